"""The cost estimate: the price table applied to what a stack declares, by the hour and by the month."""

from __future__ import annotations

import pytest

from components.aws import cost
from components.aws.cost import (
    HOURS_PER_MONTH,
    PRICES,
    PRICES_AS_OF,
    CostInventory,
    NodePool,
    RdsInstance,
    estimate,
)


def platform_inventory(region: str = "us-east-1") -> CostInventory:
    """The `platform` phase: one cluster, two spot nodes in public subnets, no NAT, an NLB in two zones."""
    return CostInventory(
        region=region,
        eks_control_planes=1,
        node_pools=(NodePool("t3.medium", "SPOT", count=2, disk_gib=20),),
        network_load_balancers=1,
        public_ipv4_addresses=2 + 2,
        s3_gb=5,
        kms_keys=1,
    )


@pytest.mark.parametrize("region", sorted(PRICES))
def test_platform_phase_costs_less_than_twenty_cents_an_hour(region):
    cost = estimate(platform_inventory(region))
    assert 0.15 < cost.hourly_usd < 0.20
    assert cost.monthly_usd == pytest.approx(cost.hourly_usd * HOURS_PER_MONTH)
    assert cost.prices_as_of == PRICES_AS_OF


def test_small_case_arithmetic_line_by_line():
    cost = estimate(
        CostInventory(
            region="us-east-1",
            eks_control_planes=1,
            node_pools=(NodePool("t3.medium", "ON_DEMAND", count=2, disk_gib=20),),
            nat_gateways=1,
            public_ipv4_addresses=3,
            s3_gb=73,
        )
    )
    lines = {line.item: (line.quantity, round(line.hourly_usd, 9)) for line in cost.lines}
    assert lines == {
        "EKS control plane": (1, 0.10),
        "EC2 t3.medium on-demand": (2, 0.0832),
        "EBS gp3 GiB (t3.medium node disks)": (40, round(40 * 0.08 / 730, 9)),
        "NAT gateway": (1, 0.045),
        "Public IPv4 address": (3, 0.015),
        "S3 Standard GB": (73, 0.0023),
    }
    hourly = 0.10 + 0.0832 + 3.2 / 730 + 0.045 + 0.015 + 0.0023
    assert cost.hourly_usd == pytest.approx(hourly, abs=1e-12)
    assert cost.monthly_usd == pytest.approx(73 + 60.736 + 3.2 + 32.85 + 10.95 + 1.679, abs=1e-9)


def test_spot_nodes_are_priced_from_the_spot_table_and_databases_with_their_storage():
    prices = PRICES["eu-west-1"]
    cost = estimate(
        CostInventory(
            region="eu-west-1",
            node_pools=(NodePool("m6i.large", "SPOT", count=1, disk_gib=50),),
            rds_instances=(RdsInstance("db.t4g.small", storage_gib=20),),
        )
    )
    hourly = {line.item: line.hourly_usd for line in cost.lines}
    assert hourly["EC2 m6i.large spot"] == prices.ec2_spot_hour["m6i.large"]
    assert hourly["EC2 m6i.large spot"] < prices.ec2_on_demand_hour["m6i.large"]
    assert hourly["RDS PostgreSQL db.t4g.small single-AZ"] == prices.rds_postgres_hour["db.t4g.small"]
    assert hourly["RDS gp3 GiB (db.t4g.small)"] * HOURS_PER_MONTH == pytest.approx(20 * prices.rds_gp3_gb_month)


def test_nothing_declared_costs_nothing():
    cost = estimate(CostInventory(region="us-east-1"))
    assert (cost.hourly_usd, cost.monthly_usd, cost.lines) == (0, 0, [])


def test_every_region_prices_the_same_instance_types_on_demand_and_spot():
    for prices in PRICES.values():
        assert set(prices.ec2_spot_hour) == set(prices.ec2_on_demand_hour)
        assert all(prices.ec2_spot_hour[t] < prices.ec2_on_demand_hour[t] for t in prices.ec2_spot_hour)


@pytest.mark.parametrize(
    ("inventory", "message"),
    [
        (CostInventory(region="mars-north-1"), "no prices for region 'mars-north-1'"),
        (
            CostInventory(region="us-east-1", node_pools=(NodePool("p5.48xlarge", "SPOT", 1, 20),)),
            "no spot price for 'p5.48xlarge' in us-east-1",
        ),
        (
            CostInventory(region="us-east-1", rds_instances=(RdsInstance("db.r7g.large", 20),)),
            "no RDS PostgreSQL price for 'db.r7g.large'",
        ),
    ],
)
def test_unpriced_items_are_an_error_not_a_zero(inventory, message):
    with pytest.raises(ValueError, match=message):
        estimate(inventory)


def test_capacity_type_is_spelled_as_eks_spells_it():
    with pytest.raises(ValueError, match="capacity_type must be SPOT or ON_DEMAND"):
        NodePool("t3.medium", "spot", 1, 20)


def test_what_the_estimate_leaves_out_is_stated_with_an_estimate():
    inventory = cost.CostInventory(
        region="us-east-1",
        eks_control_planes=1,
        node_pools=(cost.NodePool("t3.medium", "SPOT", 1, 20),),
    )
    left_out = cost.not_included(inventory)
    logs = left_out["EKS control-plane logs (CloudWatch ingestion)"]
    assert f"${cost.CONTROL_PLANE_LOG_GB_PER_DAY * 0.50 / 24:.4f} an hour" in logs
    assert "standard credit mode" in left_out["T3 surplus CPU credits"]
    on_m6i = cost.CostInventory(region="us-east-1", node_pools=(cost.NodePool("m6i.large", "SPOT", 1, 20),))
    assert cost.not_included(on_m6i)["T3 surplus CPU credits"] == "none: no T3 nodes"
    assert "$0.0000" in cost.not_included(on_m6i)["EKS control-plane logs (CloudWatch ingestion)"]
