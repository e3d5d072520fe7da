"""Moving a stack to its next phase never replaces what both phases have, and keeps data.

For each stack and each pair of consecutive built phases, every resource of the earlier
phase is registered by the later one under the same URN with the same inputs and options, so
`pulumi up` after `pulumi config set phase <next>` only adds. The exceptions are the
catalog's: a service that moves to another runtime (its Docker containers and images may go,
never its data), and the resources a phase updates in place, whose identity (name, namespace,
and the fields Kubernetes cannot change without a replacement) stays as it was.
"""

from __future__ import annotations

import pytest

from stacks.catalog import STACKS, phase_named, phases_for
from tests.conftest import evaluate
from tests.harness import Registered

# Fields whose change makes Pulumi replace, not update, an object of these kinds.
NAMED = ("metadata.name", "metadata.namespace")
IDENTITY = {
    "kubernetes:helm.sh/v3:Release": ("name", "namespace", "chart", "repositoryOpts"),
    "kubernetes:apps/v1:StatefulSet": (*NAMED, "spec.selector", "spec.serviceName", "spec.volumeClaimTemplates"),
    "kubernetes:gateway.networking.k8s.io/v1:Gateway": (*NAMED, "spec.gatewayClassName"),
    "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute": NAMED,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy": (*NAMED, "spec.podSelector"),
    "kubernetes:core/v1:Service": (*NAMED, "spec.type", "spec.loadBalancerClass", "spec.clusterIP"),
    "kubernetes:core/v1:Secret": (*NAMED, "type"),
}
STATEFUL = {"docker:index/volume:Volume", "kubernetes:core/v1:PersistentVolumeClaim"}
DOCKER_SERVICE = "llm-infra-lab:workloads:DockerService"


def field(inputs, path: str):
    for key in path.split("."):
        inputs = (inputs or {}).get(key)
    return inputs


def identity(resource: Registered) -> tuple:
    return tuple(field(resource.inputs, path) for path in IDENTITY[resource.type])


def registration(resource: Registered) -> tuple:
    """What a phase switch must leave alone: inputs, and the options that change behaviour."""
    return (resource.inputs, resource.parent, resource.provider, resource.retain_on_delete, resource.protect)


def consecutive_built_phases():
    for stack in STACKS:
        built = phases_for(stack)
        for earlier, later in zip(built, built[1:], strict=False):
            yield pytest.param(stack, earlier.name, later.name, id=f"{stack}:{earlier.name}->{later.name}")


PAIRS = list(consecutive_built_phases())


def test_there_is_a_phase_switch_to_check():
    assert PAIRS, "no stack has two built phases yet"


def moved_service(resource: Registered, by_urn: dict[str, Registered]) -> str | None:
    """The Docker service a resource belongs to, if any."""
    while resource.parent in by_urn:
        resource = by_urn[resource.parent]
        if resource.type == DOCKER_SERVICE:
            return resource.name
    return None


@pytest.mark.parametrize(("stack", "earlier", "later"), PAIRS)
def test_later_phase_keeps_every_resource_unchanged(stack, earlier, later):
    before = {r.urn: r for r in evaluate(stack, phase=earlier).resources}
    after = {r.urn: r for r in evaluate(stack, phase=later).resources}
    moved = set(phase_named(later).moved)
    dropped = [before[urn] for urn in sorted(set(before) - set(after))]
    unexplained = [r.urn for r in dropped if moved_service(r, before) not in moved or r.type in STATEFUL]
    assert not unexplained, f"{later} drops {unexplained}"
    assert {moved_service(r, before) for r in dropped} == moved, "the catalog names a move that does not happen"
    before = {urn: r for urn, r in before.items() if urn in after}
    changed = {f"{r.type}::{r.name}": urn for urn, r in before.items() if registration(r) != registration(after[urn])}
    updates = set(phase_named(later).updates)
    assert set(changed) <= updates, f"{later} changes the inputs or options of {sorted(set(changed) - updates)}"
    assert set(changed) == updates, f"the catalog names updates that do not happen: {sorted(updates - set(changed))}"
    for urn in changed.values():
        assert identity(before[urn]) == identity(after[urn]), f"{later} would replace {urn}"
        assert registration(before[urn])[1:] == registration(after[urn])[1:], f"{later} changes the options of {urn}"
    assert len(after) > len(before)


BUILT = [pytest.param(stack, phase.name, id=f"{stack}:{phase.name}") for stack in STACKS for phase in phases_for(stack)]


def retaining_storage_classes(resources: list[Registered]) -> set[str]:
    return {
        r["metadata"]["name"]
        for r in resources
        if r.type == "kubernetes:storage.k8s.io/v1:StorageClass" and r.get("reclaimPolicy") == "Retain"
    }


@pytest.mark.parametrize(("stack", "phase"), BUILT)
def test_every_stateful_resource_is_retained(stack, phase):
    resources = evaluate(stack, phase=phase).resources
    stateful = [r for r in resources if r.type in STATEFUL]
    assert stateful, f"{stack}:{phase} keeps no data? then STATEFUL misses its resource types"
    retaining = retaining_storage_classes(resources)
    unguarded = [
        r.name
        for r in stateful
        if not (r.retain_on_delete or r.protect or r.get("spec", {}).get("storageClassName") in retaining)
    ]
    assert not unguarded, f"{stack}:{phase} would delete {unguarded} with its resource"
