"""The whole pack, served by `policies/__main__.py`, analyzing every built stack and phase.

The pack runs as the CLI runs it: a subprocess serving the analyzer gRPC API, sent one
`Analyze` per registered resource and one `AnalyzeStack` with all of them. Resources come from
the mocked program runs of tests/harness.py, as the engine would send them: inputs as the
properties, `protect` and the parent as options.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pulumi
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policies.llm_infra_lab_policies import PACK_NAME, POLICIES
from policies.llm_infra_lab_policies.retention import DATA_RESOURCES
from stacks.catalog import PHASES
from tests.conftest import evaluate
from tests.harness import REPO, ProgramRun, Registered

PACK_DIR = REPO / "policies"
BUILT = [(phase.stacks[0], phase.name) for phase in PHASES]
CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """The pack's analyzer server, started the way the CLI starts it (it prints its port)."""
    server = subprocess.Popen(
        [sys.executable, str(PACK_DIR / "__main__.py")],
        cwd=PACK_DIR,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().decode().strip()
        assert port.isdigit(), f"the pack did not start: {port!r}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(_wire(values))
    return struct


def _wire(value: Any) -> Any:
    """Values as the engine sends them: an asset is an object carrying the asset signature."""
    if isinstance(value, pulumi.StringAsset):
        return {rpc._special_sig_key: rpc._special_asset_sig, "text": value.text}
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def _options(resource: Registered) -> analyzer_pb2.AnalyzerResourceOptions:
    # retainOnDelete has no field here: the engine cannot tell a policy about it.
    return analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect, parent=resource.parent)


def violations(analyzer: analyzer_pb2_grpc.AnalyzerStub, resources: list[Registered]) -> list[str]:
    """Every diagnostic of the pack over these resources, as `policy urn: message`."""
    responses = [
        (
            r.urn,  # a resource policy's diagnostic leaves the urn to the engine
            analyzer.Analyze(
                analyzer_pb2.AnalyzeRequest(
                    type=r.type, properties=_struct(dict(r.inputs)), urn=r.urn, name=r.name, options=_options(r)
                )
            ),
        )
        for r in resources
    ]
    # After an update, a stack policy sees outputs, which include the id: the mocks give `<name>-id`.
    stack = [
        analyzer_pb2.AnalyzerResource(
            type=r.type,
            properties=_struct({**r.inputs, "id": f"{r.name}-id"}),
            urn=r.urn,
            name=r.name,
            options=_options(r),
            parent=r.parent,
        )
        for r in resources
    ]
    responses.append(("", analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=stack))))
    return [f"{d.policyName} {d.urn or urn}: {d.message}" for urn, response in responses for d in response.diagnostics]


def run_of(stack: str, phase: str) -> ProgramRun:
    return evaluate(stack, phase=phase)


def test_the_pack_serves_every_policy_as_mandatory(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == PACK_NAME
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in POLICIES)
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_pack_pins_the_pulumi_of_the_program():
    def pins(path: str) -> dict[str, str]:
        lines = (REPO / path).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    assert pins("policies/requirements.txt") == {
        "pulumi": pins("requirements.txt")["pulumi"],
        "pulumi-policy": "1.21.0",
    }


def test_some_phase_is_built():
    assert BUILT, "no phase has a module: the stack-run tests below would check nothing"


@pytest.mark.parametrize(("stack", "phase"), BUILT, ids=[f"{s}-{p}" for s, p in BUILT])
def test_every_built_phase_passes_the_whole_pack(analyzer, stack, phase):
    run = run_of(stack, phase)
    assert run.resources
    assert violations(analyzer, run.resources) == []


@pytest.mark.parametrize(("stack", "phase"), BUILT, ids=[f"{s}-{p}" for s, p in BUILT])
def test_data_resources_are_retained_where_policies_cannot_see_it(stack, phase):
    """retainOnDelete is invisible to the pack (see retention.py); the mocks do see it."""
    data = [r for r in run_of(stack, phase).resources if r.type in DATA_RESOURCES]
    assert [r.name for r in data if not (r.retain_on_delete or r.protect)] == []


def _with_inputs(**changes: Any) -> Callable[[Registered], Registered]:
    return lambda r: dataclasses.replace(r, inputs={**r.inputs, **changes})


def _anonymous_admin(container: Registered) -> Registered:
    envs = [e for e in container["envs"] if not e.startswith("GF_AUTH_ANONYMOUS")]
    return _with_inputs(envs=[*envs, "GF_AUTH_ANONYMOUS_ENABLED=true", "GF_AUTH_ANONYMOUS_ORG_ROLE=Admin"])(container)


MISTAKES = [
    # (what, resource type changed, change, policy, message after "grafana: ")
    (
        "latest container image",
        CONTAINER,
        _with_inputs(image="grafana/grafana:latest"),
        "pinned-images",
        "container: image 'grafana/grafana:latest' floats with `latest`",
    ),
    (
        "untagged pulled image",
        IMAGE,
        _with_inputs(name="grafana/grafana"),
        "pinned-images",
        "image 'grafana/grafana' has no tag",
    ),
    ("no memory limit", CONTAINER, _with_inputs(memory=0), "memory-limits", "container: no memory limit"),
    (
        "anonymous admin",
        CONTAINER,
        _anonymous_admin,
        "no-anonymous-grafana",
        "container: Grafana anonymous access is on (role Admin)",
    ),
]


@pytest.mark.parametrize(
    ("type_", "change", "policy", "message"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_the_pack_catches_a_mistake_in_a_real_run(analyzer, type_, change, policy, message):
    run = run_of("local", "observability")
    target = run.named(type_, "grafana")
    resources = [change(r) if r is target else r for r in run.resources]
    found = violations(analyzer, resources)
    assert len(found) == 1, found
    assert found[0].startswith(f"{policy} {target.urn}: ")
    assert f"grafana: {message}" in found[0]
    assert violations(analyzer, run.resources) == [], "the change went to a copy, not the shared run"


def test_the_pack_catches_a_volume_left_unprotected(analyzer):
    run = run_of("local", "observability")
    volume = run.named("docker:index/volume:Volume", "grafana-data")
    assert volume.protect and volume.retain_on_delete
    exposed = dataclasses.replace(volume, protect=False)
    found = violations(analyzer, [exposed if r is volume else r for r in run.resources])
    assert len(found) == 1 and found[0].startswith(f"data-retained {volume.urn}"), found
    assert "grafana-data: nothing but protect keeps this data" in found[0]
