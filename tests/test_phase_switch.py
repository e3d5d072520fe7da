"""Moving a stack to its next phase never replaces what both phases have, and keeps data.

For each stack and each pair of consecutive built phases, every resource of the earlier
phase is registered by the later one under the same URN with the same inputs and options, so
`pulumi up` after `pulumi config set phase <next>` only adds.
"""

from __future__ import annotations

import pytest

from stacks.catalog import STACKS, phases_for
from tests.conftest import evaluate
from tests.harness import Registered

STATEFUL = {"docker:index/volume:Volume"}


def registration(resource: Registered) -> tuple:
    """What a phase switch must leave alone: inputs, and the options that change behaviour."""
    return (resource.inputs, resource.parent, resource.provider, resource.retain_on_delete, resource.protect)


def consecutive_built_phases():
    for stack in STACKS:
        built = [phase for phase in phases_for(stack) if phase.module is not None]
        for earlier, later in zip(built, built[1:], strict=False):
            yield pytest.param(stack, earlier.name, later.name, id=f"{stack}:{earlier.name}->{later.name}")


PAIRS = list(consecutive_built_phases())


def test_there_is_a_phase_switch_to_check():
    assert PAIRS, "no stack has two built phases yet"


@pytest.mark.parametrize(("stack", "earlier", "later"), PAIRS)
def test_later_phase_keeps_every_resource_unchanged(stack, earlier, later):
    before = {r.urn: r for r in evaluate(stack, phase=earlier).resources}
    after = {r.urn: r for r in evaluate(stack, phase=later).resources}
    missing = sorted(set(before) - set(after))
    assert not missing, f"{later} drops {missing}"
    changed = [urn for urn in before if registration(before[urn]) != registration(after[urn])]
    assert not changed, f"{later} changes the inputs or options of {changed}"
    assert len(after) > len(before)


BUILT = [
    pytest.param(stack, phase.name, id=f"{stack}:{phase.name}")
    for stack in STACKS
    for phase in phases_for(stack)
    if phase.module is not None
]


@pytest.mark.parametrize(("stack", "phase"), BUILT)
def test_every_stateful_resource_is_retained(stack, phase):
    stateful = [r for r in evaluate(stack, phase=phase).resources if r.type in STATEFUL]
    assert stateful, f"{stack}:{phase} keeps no data? then STATEFUL misses its resource types"
    unguarded = [r.name for r in stateful if not (r.retain_on_delete or r.protect)]
    assert not unguarded, f"{stack}:{phase} would delete {unguarded} with its resource"
