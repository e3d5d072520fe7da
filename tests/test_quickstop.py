"""What a quickstop keeps, replayed from what each phase registers, and what it still costs.

`pulumi destroy --exclude-protected` keeps every protected resource and, transitively, everything it
depends on: its parent, its provider, what its inputs came from, its `depends_on` and what it is deleted
with. A protected bucket under a component that waits for the cluster's nodes keeps the cluster, so this
replays the rule over the registrations instead of trusting the intent of each `protect`.
"""

from __future__ import annotations

import pytest

from stacks.catalog import PHASES
from tests.conftest import evaluate
from tests.harness import PROJECT, REPO, ProgramRun, Registered
from tests.test_lifecycle import DEV_OUTPUTS, KUBERNETES_OUTPUTS, LOCAL_OUTPUTS, dev_state, lab

STACK_PHASES = [(stack, phase.name) for phase in PHASES for stack in phase.stacks]
WHAT_DATA_STANDS_ON = {
    # A database stays in its network: free while nothing runs in it.
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/parameterGroup:ParameterGroup",
    # Names the database's final snapshot.
    "random:index/randomId:RandomId",
}
BILLED_BY = {
    # A cost line's item (its start) and the resources whose existence bills it.
    "EKS control plane": {"aws:eks/cluster:Cluster"},
    "EC2 ": {"aws:eks/nodeGroup:NodeGroup"},
    "EBS gp3 GiB (t3": {"aws:eks/nodeGroup:NodeGroup"},
    "NAT gateway": {"aws:ec2/natGateway:NatGateway"},
    # The cloud's controller makes the load balancer for Traefik's Service, which its release owns.
    "Network Load Balancer": {"kubernetes:helm.sh/v3:Release"},
    "Public IPv4 address": {"aws:eks/nodeGroup:NodeGroup", "kubernetes:helm.sh/v3:Release", "aws:ec2/eip:Eip"},
    "RDS ": {"aws:rds/instance:Instance"},
    "S3 Standard GB": {"aws:s3/bucket:Bucket"},
    "KMS customer managed key": {"aws:kms/key:Key"},
}
CLAIMS = "EBS gp3 GiB (claims)"
"""Claims' volumes outlive the cluster when their StorageClass retains them, whatever Pulumi keeps."""


def kept_by_quickstop(run: ProgramRun) -> list[Registered]:
    by_urn = {r.urn: r for r in run.resources}
    kept: set[str] = set()
    pending = [r.urn for r in run.resources if r.protect]
    while pending:
        urn = pending.pop()
        if urn in kept or urn not in by_urn:
            continue
        kept.add(urn)
        resource = by_urn[urn]
        provider = resource.provider.rsplit("::", 1)[0] if resource.provider else ""
        pending += [resource.parent, provider, *resource.dependencies, resource.deleted_with]
    return [by_urn[urn] for urn in kept]


def is_component_or_provider(resource: Registered) -> bool:
    """Components are the program's own grouping; providers are configuration. Neither exists in a cloud."""
    return resource.type.startswith("pulumi:providers:") or "/" not in resource.type.split(":", 1)[1]


@pytest.mark.parametrize(("stack", "phase"), STACK_PHASES)
def test_a_quickstop_keeps_the_data_and_only_what_the_data_stands_on(stack, phase):
    run = evaluate(stack, phase=phase)
    kept = [r for r in kept_by_quickstop(run) if not is_component_or_provider(r)]
    assert any(r.protect for r in kept), "every phase keeps some data"
    extra = sorted(f"{r.type} {r.name}" for r in kept if not r.protect and r.type not in WHAT_DATA_STANDS_ON)
    assert not extra, f"a quickstop of {stack}:{phase} would also keep {extra}"


def test_with_data_not_retained_a_quickstop_keeps_nothing():
    for stack, phase in STACK_PHASES:
        assert not kept_by_quickstop(evaluate(stack, phase=phase, retainData="false")), f"{stack}:{phase}"


def retained_claims(run: ProgramRun) -> bool:
    classes = run.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
    return any(c.get("reclaimPolicy") == "Retain" for c in classes)


@pytest.mark.parametrize("phase", [p.name for p in PHASES if "dev" in p.stacks])
def test_the_cost_after_a_quickstop_is_the_cost_of_what_it_keeps(phase):
    run = evaluate("dev", phase=phase)
    kept_types = {r.type for r in kept_by_quickstop(run)}
    running = run.outputs["costBreakdown"]

    def survives(item: str) -> bool:
        if item == CLAIMS:
            return retained_claims(run)
        (billers,) = [types for start, types in BILLED_BY.items() if item.startswith(start)]
        return bool(billers & kept_types)

    expected = {item: usd for item, usd in running.items() if survives(item)}
    assert run.outputs["quickstopCostBreakdown"] == expected
    # Each line is rounded to 4 places, the total too.
    rounding = 0.00005 * (len(expected) + 1)
    assert run.outputs["quickstopHourlyCostUsd"] == pytest.approx(sum(expected.values()), abs=rounding)


def test_the_readme_states_each_phases_cost_after_a_quickstop():
    readme = (REPO / "README.md").read_text()
    for phase in (p.name for p in PHASES if "dev" in p.stacks):
        hourly = evaluate("dev", phase=phase).outputs["quickstopHourlyCostUsd"]
        assert f"${hourly:.4f} an hour after a quickstop" in readme, phase


def readme_cost_table(readme: str, total: float) -> dict[str, float]:
    """The rows of the README's cost table whose total row states `total`."""
    tables = readme.split("| item (us-east-1, prices as of 2026-01) | quantity | $ / hour |")[1:]
    (table,) = [t for t in tables if f"**{total:.4f}**" in t.split("\n\n")[0]]
    rows = [line.split("|")[1:4] for line in table.split("\n\n")[0].splitlines() if line.startswith("| ")]
    return {item.strip(): float(usd) for item, _, usd in rows if not item.strip().startswith("**")}


@pytest.mark.parametrize("phase", [p.name for p in PHASES if "dev" in p.stacks])
def test_the_readme_cost_table_is_the_cost_model_at_defaults(phase):
    outputs = evaluate("dev", phase=phase).outputs
    table = readme_cost_table((REPO / "README.md").read_text(), outputs["estimatedHourlyCostUsd"])
    assert table == outputs["costBreakdown"]


# --- what `make quickstop`, `make status` and `make teardown` (scripts/lab.py) read from the state -------------


def exported(run: ProgramRun, *, quickstopped: bool = False) -> dict:
    """`pulumi stack export` of what the program registers, or of what a quickstop keeps of it."""
    kept = {r.urn for r in kept_by_quickstop(run)}
    root = {
        "urn": f"urn:pulumi:{run.stack}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{run.stack}",
        "type": "pulumi:pulumi:Stack",
    }
    resources = [root]
    for r in run.resources:
        if quickstopped and r.urn not in kept:
            continue
        names = {key: r.inputs[key] for key in ("name", "bucket", "metadata") if key in r.inputs}
        entry = {"urn": r.urn, "type": r.type, "parent": r.parent or root["urn"], "protect": r.protect}
        entry |= {"provider": r.provider, "dependencies": list(r.dependencies), "deletedWith": r.deleted_with}
        resources.append(entry | {"outputs": names})
    return {"version": 3, "deployment": {"resources": resources}}


@pytest.mark.parametrize(("stack", "phase"), STACK_PHASES)
def test_the_lifecycle_commands_replay_the_same_rule_over_the_state(stack, phase):
    run = evaluate(stack, phase=phase)
    state = lab.exported_resources(exported(run))
    kept = {r.urn for r in lab.kept_by_quickstop(state) if r.type != "pulumi:pulumi:Stack"}
    assert kept == {r.urn for r in kept_by_quickstop(run)}
    assert not lab.stopped(state)
    assert lab.stopped(lab.exported_resources(exported(run, quickstopped=True)))


def test_the_lifecycle_tests_stand_in_with_the_programs_outputs_and_kept_data():
    platform = evaluate("dev", phase="platform")
    assert outputs_as_shown(platform) == DEV_OUTPUTS
    assert outputs_as_shown(evaluate("local", phase="observability")) == LOCAL_OUTPUTS
    kubernetes = outputs_as_shown(evaluate("local", phase="kubernetes"))
    assert {name: kubernetes[name] for name in KUBERNETES_OUTPUTS} == KUBERNETES_OUTPUTS

    def data(export: dict) -> set[tuple[str, str]]:
        return {(r.type, r.physical) for r in lab.exported_resources(export) if r.protect}

    assert data(dev_state(quickstopped=True)) == data(exported(platform))


def outputs_as_shown(run: ProgramRun) -> dict:
    """`pulumi stack output --json`: a secret output shows as [secret]."""
    return {name: "[secret]" if name in run.secret_outputs else value for name, value in run.outputs.items()}


def test_a_teardown_looks_for_what_outlives_pulumi_under_the_programs_names():
    leftovers = lab.DevLeftovers(lab.Lab(lab.Project.load(), "dev"), delete=False)
    production = evaluate("dev", phase="production")
    assert production.named("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs")["name"] == leftovers.log_group
    (database,) = production.of_type("aws:rds/instance:Instance")
    assert database["finalSnapshotIdentifier"].startswith(leftovers.final_snapshots)
    buckets = production.of_type("aws:s3/bucket:Bucket")
    assert len(buckets) == 4
    assert all((b.get("bucket") or b["bucketPrefix"]).startswith(f"{leftovers.prefix}-") for b in buckets)
