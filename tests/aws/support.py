"""Runs AWS components under the shared mocks and keeps what the harness does not: each resource's dependencies.

Dependencies are what the engine orders creation by (explicit `depends_on` and the resources an input came
from), so the tests can check that, say, the log group exists before the cluster starts logging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from tests.harness import ProgramRun, Registered, _RecordingMonitor, run_program

ACCOUNT = "123456789012"
DEPLOYER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lab-admin"
"""The role behind the session the mocked getCallerIdentity reports."""
NODE_ALLOCATABLE_MIB = 3300
"""A t3.medium on EKS's AL2023 image: 3.8 GiB less kubelet's 442 MiB (17 pods) and the 100 MiB eviction threshold."""
SYSTEM_MIB_PER_NODE = 600
"""VPC CNI, kube-proxy, EBS CSI node and their share of CoreDNS, the CSI controller and metrics-server."""
REGION_ZONES = ["us-east-1a", "us-east-1c", "us-east-1d"]
"""The mocked zones of us-east-1 EKS supports, in order; us-east-1b is use1-az3 in the mocked account."""


@dataclass
class AwsRun:
    run: ProgramRun
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    property_dependencies: dict[str, dict[str, set[str]]] = field(default_factory=dict)

    @property
    def resources(self) -> list[Registered]:
        return self.run.resources

    def of_type(self, type_: str) -> list[Registered]:
        return self.run.of_type(type_)

    def named(self, type_: str, name: str) -> Registered:
        return self.run.named(type_, name)

    def depends_on(self, resource: Registered, other: Registered) -> bool:
        return other.urn in self.dependencies[resource.urn]


def run_aws(
    program: Callable[[], Any],
    computed: Mapping[str, Mapping[str, Any]] | None = None,
    overrides: Mapping[str, str] | None = None,
) -> AwsRun:
    """Evaluate `program` with the dev stack's config; raises what the program raises."""
    result = AwsRun(run=ProgramRun(stack="dev", config={}))
    register = _RecordingMonitor.RegisterResource

    def recording(monitor: _RecordingMonitor, request: Any) -> Any:
        response = register(monitor, request)
        result.dependencies[response.urn] = set(request.dependencies)
        result.property_dependencies[response.urn] = {
            key: set(value.urns) for key, value in request.propertyDependencies.items()
        }
        return response

    with mock.patch.object(_RecordingMonitor, "RegisterResource", recording):
        result.run = run_program(program, "dev", overrides, computed).raise_error()
    return result
