"""Runs the real `__main__.py` of a stack under Pulumi mocks and records what it registers.

Config is assembled the way the Pulumi CLI does it: the defaults in `Pulumi.yaml`, then the
stack file `Pulumi.<stack>.yaml`, then a test's overrides. Each run gets a fresh event loop
and a fresh root stack, so runs do not leak into each other.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc
from pulumi.runtime.settings import SETTINGS, set_root_resource
from pulumi.runtime.stack import run_pulumi_func

REPO = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((REPO / "Pulumi.yaml").read_text())["name"]


@dataclass(frozen=True)
class Registered:
    """One resource registration as the engine would see it."""

    type: str
    name: str
    urn: str
    parent: str
    provider: str
    inputs: Mapping[str, Any]
    has_secret_inputs: bool
    retain_on_delete: bool
    protect: bool
    ignore_changes: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    """URNs it depends on: `depends_on` and every input's source, as the engine records them."""
    deleted_with: str = ""
    former_parents: tuple[str, ...] = ()
    """Parents named by its aliases: where the engine looks for it in the state when its URN has moved."""

    def __getitem__(self, key: str) -> Any:
        return self.inputs[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.inputs.get(key, default)


@dataclass
class ProgramRun:
    stack: str
    config: Mapping[str, str]
    resources: list[Registered] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    error: BaseException | None = None

    def raise_error(self) -> ProgramRun:
        if self.error is not None:
            raise self.error
        return self

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> Registered:
        matches = [r for r in self.of_type(type_) if r.name == name]
        assert len(matches) == 1, f"expected one {type_} named {name}, found {len(matches)}"
        return matches[0]


def _eks_cluster(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    issuer = f"oidc.eks.us-east-1.amazonaws.com/id/{args.name.upper()}"
    return {
        "arn": f"arn:aws:eks:us-east-1:123456789012:cluster/{args.inputs.get('name', args.name)}",
        "endpoint": f"https://{args.name}.gr7.us-east-1.eks.amazonaws.com",
        "certificateAuthority": {"data": "bW9jay1jYQ=="},
        "identities": [{"oidcs": [{"issuer": f"https://{issuer}"}]}],
        "vpcConfig": {**args.inputs.get("vpcConfig", {}), "clusterSecurityGroupId": "sg-mockcluster"},
    }


def _s3_bucket(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    bucket = args.inputs.get("bucket") or f"{args.inputs.get('bucketPrefix', '')}mock"
    return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}


_COMPUTED_BY_TYPE = {
    "random:index/randomPassword:RandomPassword": lambda args: {
        "result": f"generated-{args.name}-" + "x" * int(args.inputs.get("length", 16))
    },
    "random:index/randomId:RandomId": lambda args: {"hex": "a1b2c3d4"},
    "docker:index/container:Container": lambda args: {"exitCode": 0} if args.inputs.get("attach") else {},
    "docker:index/remoteImage:RemoteImage": lambda args: {
        "imageId": f"sha256:{args.name}",
        "repoDigest": f"{args.inputs['name']}@sha256:mock",
    },
    "aws:eks/cluster:Cluster": _eks_cluster,
    "aws:rds/instance:Instance": lambda args: {
        "address": f"{args.inputs['identifier']}.c0mock0.us-east-1.rds.amazonaws.com",
        "port": 5432,
    },
    "aws:s3/bucket:Bucket": _s3_bucket,
}


def _mock_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """Provider-computed outputs the program reads back; any AWS resource gets an ARN."""
    if args.typ in _COMPUTED_BY_TYPE:
        return _COMPUTED_BY_TYPE[args.typ](args)
    if args.typ.startswith("aws:") and "arn" not in args.inputs:
        return {"arn": f"arn:aws:mock::123456789012:{args.name}", "name": args.inputs.get("name", args.name)}
    return {}


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, computed: Mapping[str, Mapping[str, Any]] | None = None):
        super().__init__()
        self._computed = computed or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = {**args.inputs, **_mock_outputs(args), **self._computed.get(args.name, {})}
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # noqa: PLR0911 (one return per invoke)
        region = args.args.get("region") or pulumi.Config("aws").get("region") or "us-east-1"
        account = "123456789012"
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # Names map to zone ids per account; in this one us-east-1b is use1-az3, a zone EKS does not support.
            ids = (1, 3, 2, 4, 6, 5) if region == "us-east-1" else (1, 2, 3)
            area, *directions, number = region.split("-")
            prefix = area + "".join(direction[0] for direction in directions) + number  # us-east-1: use1
            zones = [(f"{region}{letter}", f"{prefix}-az{n}") for letter, n in zip("abcdef", ids, strict=False)]
            excluded = set(args.args.get("excludeZoneIds") or []) | set(args.args.get("excludeNames") or [])
            zones = [(name, zone_id) for name, zone_id in zones if not {name, zone_id} & excluded]
            return {
                "id": region,
                "region": region,
                "names": [name for name, _ in zones],
                "zoneIds": [zone_id for _, zone_id in zones],
                "groupNames": [region] * len(zones),
                "state": args.args.get("state"),
            }
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            arn = f"arn:aws:sts::{account}:assumed-role/lab-admin/alice"
            return {"id": account, "accountId": account, "arn": arn, "userId": "AROAEXAMPLEROLEID:alice"}
        if args.token == "aws:index/getRegion:getRegion":
            return {"id": region, "region": region, "name": region, "endpoint": f"ec2.{region}.amazonaws.com"}
        if args.token == "aws:eks/getAddonVersion:getAddonVersion":
            addon, kubernetes = args.args["addonName"], args.args["kubernetesVersion"]
            version = f"v{kubernetes}.0-eksbuild.1"
            return {"id": addon, "addonName": addon, "kubernetesVersion": kubernetes, "version": version}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            registry = f"{account}.dkr.ecr.{region}.amazonaws.com"
            return {
                "id": region,
                "authorizationToken": "QVdTOm1vY2stdG9rZW4=",
                "proxyEndpoint": f"https://{registry}",
                "userName": "AWS",
                "password": "mock-token",
                "expiresAt": "2026-11-24T00:00:00Z",
            }
        if args.token == "aws:index/getPartition:getPartition":
            return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}
        raise NotImplementedError(f"no mock for invoke {args.token}")


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, run: ProgramRun, mocks: _Mocks):
        super().__init__(mocks)
        self._run = run

    def RegisterResource(self, request):  # noqa: N802 (gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs, has_secret = rpc.deserialize_properties_unwrap_secrets(request.object)
            self._run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    provider=request.provider,
                    inputs=inputs,
                    has_secret_inputs=has_secret,
                    retain_on_delete=request.retainOnDelete,
                    protect=request.protect,
                    ignore_changes=tuple(request.ignoreChanges),
                    dependencies=tuple(request.dependencies),
                    deleted_with=request.deletedWith,
                    former_parents=tuple(alias.spec.parentUrn for alias in request.aliases if alias.spec.parentUrn),
                )
            )
        return response


OPERATOR_CONFIG = {
    "dev": {
        "apiAllowedCidrs": "203.0.113.10/32",
        "clusterAdminArn": "arn:aws:iam::123456789012:role/lab-admin",
        "domain": "lab.example.com",
        "acmeEmail": "ops@llm-infra-lab.dev",
        # After the README's loop has promoted a model (ml/): the production phase then serves it.
        "servedModelUri": (
            "s3://llm-infra-lab-dev-artifacts-123456789012-us-east-1/mlflow/1/models/m-0123456789abcdef/artifacts"
        ),
    }
}
"""What a person sets for a stack (README), set here as they would."""


def stack_config(stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Project defaults, the stack file, what the operator sets, then overrides; keys fully qualified."""
    project = read_yaml(REPO / "Pulumi.yaml")
    config = {f"{PROJECT}:{key}": _config_string(spec["default"]) for key, spec in project.get("config", {}).items()}
    stack_file = REPO / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        values = read_yaml(stack_file).get("config", {})
        config.update({key: _config_string(value) for key, value in values.items()})
    for key, value in {**OPERATOR_CONFIG.get(stack, {}), **(overrides or {})}.items():
        config[key if ":" in key else f"{PROJECT}:{key}"] = value
    return config


def read_yaml(path: Path) -> Any:
    """A YAML file of the repository, parsed once per version of it (a copy: callers may change it)."""
    return copy.deepcopy(_parsed_yaml(path, path.stat().st_mtime_ns))


@functools.cache
def _parsed_yaml(path: Path, _mtime_ns: int) -> Any:
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def run_stack(stack: str, overrides: Mapping[str, str] | None = None) -> ProgramRun:
    """Evaluate `__main__.py` for a stack; raises what the program raises."""
    return run_program(lambda: runpy.run_path(str(REPO / "__main__.py")), stack, overrides).raise_error()


def failed_stack(stack: str, overrides: Mapping[str, str] | None = None) -> ProgramRun:
    """Evaluate a stack expected to fail; the run keeps the error and what was registered."""
    run = run_program(lambda: runpy.run_path(str(REPO / "__main__.py")), stack, overrides)
    assert run.error is not None, f"stack {stack} with {overrides} evaluated without error"
    return run


def run_program(
    program: Callable[[], Any],
    stack: str,
    overrides: Mapping[str, str] | None = None,
    computed: Mapping[str, Mapping[str, Any]] | None = None,
) -> ProgramRun:
    """Evaluate any Pulumi program (a component under test, say) with a stack's config.

    `computed` overrides what the provider would report back for a resource, by name.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    run = ProgramRun(stack=stack, config=stack_config(stack, overrides))
    set_root_resource(None)
    # A failed run can leave tasks bound to its closed loop; start from nothing, as pulumi.runtime.test does.
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    mocks = _Mocks(computed)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=_RecordingMonitor(run, mocks))
    pulumi.runtime.set_all_config(dict(run.config))
    try:
        loop.run_until_complete(run_pulumi_func(program))
        root = pulumi.runtime.settings.get_root_resource()
        for name, value in root.outputs.items():
            output = pulumi.Output.from_input(value)
            run.outputs[name] = loop.run_until_complete(output.future())
            if loop.run_until_complete(output.is_secret()):
                run.secret_outputs.add(name)
    except Exception as error:  # noqa: BLE001 kept on the run for the test to assert on
        run.error = error
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    return run
