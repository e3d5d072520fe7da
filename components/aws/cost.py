"""What a stack's AWS resources cost while they exist, from a price table kept in the code.

Prices are AWS list prices in USD for Linux on-demand, PostgreSQL single-AZ and standard support, from the
public pricing pages (aws.amazon.com/ec2/pricing/on-demand, /eks/pricing, /vpc/pricing, /elasticloadbalancing/
pricing, /ebs/pricing, /rds/postgresql/pricing, /s3/pricing, /kms/pricing). Not included, because they depend on
traffic rather than on what is declared: data transfer, NAT and load balancer data processing, NLB capacity
units (LCU, $0.006 an hour each; an idle lab uses next to none), CloudWatch log ingestion, S3 and KMS requests.

Spot prices are a snapshot of typical prices, not a quote: they vary by zone and by hour, and a spot node can
be reclaimed at two minutes' notice.

An hour of something billed by the month (storage, a KMS key) counts as its monthly price / HOURS_PER_MONTH,
so the hourly figure is the whole bill spread evenly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from components.aws.eks import BURSTABLE

PRICES_AS_OF = "2026-01"
HOURS_PER_MONTH = 730
"""AWS bills a month as 730 hours."""


@dataclass(frozen=True)
class RegionPrices:
    eks_control_plane_hour: float
    ec2_on_demand_hour: Mapping[str, float]
    ec2_spot_hour: Mapping[str, float]
    nat_gateway_hour: float
    network_load_balancer_hour: float
    public_ipv4_hour: float
    ebs_gp3_gb_month: float
    rds_postgres_hour: Mapping[str, float]
    rds_gp3_gb_month: float
    s3_standard_gb_month: float
    kms_key_month: float
    cloudwatch_logs_ingested_gb: float


PRICES: Mapping[str, RegionPrices] = {
    "us-east-1": RegionPrices(
        eks_control_plane_hour=0.10,
        ec2_on_demand_hour={
            "t3.medium": 0.0416,
            "t3a.medium": 0.0376,
            "t3.large": 0.0832,
            "t3a.large": 0.0752,
            "m6i.large": 0.096,
            "m6a.large": 0.0864,
            "m7i.large": 0.1008,
            "c6i.large": 0.085,
        },
        ec2_spot_hour={
            "t3.medium": 0.0150,
            "t3a.medium": 0.0130,
            "t3.large": 0.0300,
            "t3a.large": 0.0270,
            "m6i.large": 0.0380,
            "m6a.large": 0.0350,
            "m7i.large": 0.0400,
            "c6i.large": 0.0330,
        },
        nat_gateway_hour=0.045,
        network_load_balancer_hour=0.0225,
        public_ipv4_hour=0.005,
        ebs_gp3_gb_month=0.08,
        rds_postgres_hour={"db.t4g.micro": 0.016, "db.t4g.small": 0.032},
        rds_gp3_gb_month=0.115,
        s3_standard_gb_month=0.023,
        kms_key_month=1.00,
        cloudwatch_logs_ingested_gb=0.50,
    ),
    "eu-west-1": RegionPrices(
        eks_control_plane_hour=0.10,
        ec2_on_demand_hour={
            "t3.medium": 0.0456,
            "t3a.medium": 0.0408,
            "t3.large": 0.0912,
            "t3a.large": 0.0816,
            "m6i.large": 0.107,
            "m6a.large": 0.0963,
            "m7i.large": 0.1124,
            "c6i.large": 0.096,
        },
        ec2_spot_hour={
            "t3.medium": 0.0160,
            "t3a.medium": 0.0140,
            "t3.large": 0.0320,
            "t3a.large": 0.0290,
            "m6i.large": 0.0420,
            "m6a.large": 0.0380,
            "m7i.large": 0.0450,
            "c6i.large": 0.0370,
        },
        nat_gateway_hour=0.048,
        network_load_balancer_hour=0.0252,
        public_ipv4_hour=0.005,
        ebs_gp3_gb_month=0.088,
        rds_postgres_hour={"db.t4g.micro": 0.018, "db.t4g.small": 0.036},
        rds_gp3_gb_month=0.127,
        s3_standard_gb_month=0.023,
        kms_key_month=1.00,
        cloudwatch_logs_ingested_gb=0.57,
    ),
}
CONTROL_PLANE_LOG_GB_PER_DAY = 0.5
"""An assumption, not a measurement: a small, mostly idle cluster's api, audit and authenticator logs (the
controllers' and nodes' watches and lease renewals dominate). `aws logs describe-log-groups` shows the real
`storedBytes` after a day."""


@dataclass(frozen=True)
class NodePool:
    instance_type: str
    capacity_type: str
    """SPOT or ON_DEMAND, as EKS spells it."""
    count: int
    disk_gib: int
    group: str | None = None
    """Names a further node group in the breakdown."""

    def __post_init__(self) -> None:
        if self.capacity_type not in ("SPOT", "ON_DEMAND"):
            raise ValueError(f"capacity_type must be SPOT or ON_DEMAND, got {self.capacity_type!r}")


@dataclass(frozen=True)
class RdsInstance:
    instance_class: str
    storage_gib: int


@dataclass(frozen=True)
class CostInventory:
    """What a stack declares, counted the way AWS bills it."""

    region: str
    eks_control_planes: int = 0
    node_pools: Sequence[NodePool] = field(default_factory=tuple)
    nat_gateways: int = 0
    network_load_balancers: int = 0
    public_ipv4_addresses: int = 0
    """Every public address is billed: one per node in a public subnet, one per NLB zone, one per NAT gateway."""
    rds_instances: Sequence[RdsInstance] = field(default_factory=tuple)
    s3_gb: float = 0
    """Expected stored data; a lab's artifact store holds a few GB."""
    volume_gib: float = 0
    """EBS gp3 volumes behind the cluster's claims."""
    kms_keys: int = 0


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    hourly_usd: float

    @property
    def monthly_usd(self) -> float:
        return self.hourly_usd * HOURS_PER_MONTH


@dataclass(frozen=True)
class CostEstimate:
    hourly_usd: float
    monthly_usd: float
    lines: list[CostLine]
    prices_as_of: str = PRICES_AS_OF


def not_included(inventory: CostInventory) -> dict[str, str]:
    """What the estimate leaves out, each with an estimate or the reason it is nil."""
    prices = region_prices(inventory.region)
    logs_gb_per_day = CONTROL_PLANE_LOG_GB_PER_DAY * inventory.eks_control_planes
    logs_hour = logs_gb_per_day * prices.cloudwatch_logs_ingested_gb / 24
    burstable = [pool.instance_type for pool in inventory.node_pools if BURSTABLE.match(pool.instance_type)]
    return {
        "EKS control-plane logs (CloudWatch ingestion)": (
            f"about ${logs_hour:.4f} an hour, assuming {CONTROL_PLANE_LOG_GB_PER_DAY:g} GB a day "
            f"at ${prices.cloudwatch_logs_ingested_gb:.2f} per GB"
        ),
        "T3 surplus CPU credits": (
            "none: the nodes run in standard credit mode and slow down instead" if burstable else "none: no T3 nodes"
        ),
        "traffic": "data transfer, load balancer capacity units, NAT data processing, S3 and KMS requests",
    }


def after_quickstop(inventory: CostInventory, *, data_retained: bool) -> CostInventory:
    """What still bills after a quickstop (`pulumi destroy --exclude-protected`): the data.

    Databases and buckets are protected and stay with what they need (a VPC, subnets: free); claims' volumes
    outlive the cluster through a Retain StorageClass. Compute, the control plane, load balancers, addresses
    and the cluster's key go. With data not retained nothing is protected, and a quickstop is a teardown.
    """
    if not data_retained:
        return CostInventory(region=inventory.region)
    return CostInventory(
        region=inventory.region,
        rds_instances=inventory.rds_instances,
        s3_gb=inventory.s3_gb,
        volume_gib=inventory.volume_gib,
    )


def region_prices(region: str) -> RegionPrices:
    if region not in PRICES:
        raise ValueError(f"no prices for region {region!r}: add it to PRICES (known: {', '.join(sorted(PRICES))})")
    return PRICES[region]


def _price(table: Mapping[str, float], key: str, what: str, region: str) -> float:
    if key not in table:
        raise ValueError(f"no {what} price for {key!r} in {region}: add it to PRICES (known: {', '.join(table)})")
    return table[key]


def estimate(inventory: CostInventory) -> CostEstimate:
    """The cost of keeping everything in `inventory` running, per hour and per 730-hour month."""
    prices = region_prices(inventory.region)
    region = inventory.region
    lines: list[CostLine] = []

    def hourly(item: str, quantity: float, price: float) -> None:
        if quantity:
            lines.append(CostLine(item, quantity, quantity * price))

    def monthly(item: str, quantity: float, price_per_month: float) -> None:
        hourly(item, quantity, price_per_month / HOURS_PER_MONTH)

    hourly("EKS control plane", inventory.eks_control_planes, prices.eks_control_plane_hour)
    for pool in inventory.node_pools:
        spot = pool.capacity_type == "SPOT"
        table, what = (prices.ec2_spot_hour, "spot") if spot else (prices.ec2_on_demand_hour, "on-demand")
        group = f" ({pool.group})" if pool.group else ""
        price = _price(table, pool.instance_type, what, region)
        hourly(f"EC2 {pool.instance_type} {what}{group}", pool.count, price)
        disks = f"EBS gp3 GiB ({pool.instance_type} node disks{', ' + pool.group if pool.group else ''})"
        monthly(disks, pool.count * pool.disk_gib, prices.ebs_gp3_gb_month)
    hourly("NAT gateway", inventory.nat_gateways, prices.nat_gateway_hour)
    hourly("Network Load Balancer (LCU excluded)", inventory.network_load_balancers, prices.network_load_balancer_hour)
    hourly("Public IPv4 address", inventory.public_ipv4_addresses, prices.public_ipv4_hour)
    for database in inventory.rds_instances:
        price = _price(prices.rds_postgres_hour, database.instance_class, "RDS PostgreSQL", region)
        hourly(f"RDS PostgreSQL {database.instance_class} single-AZ", 1, price)
        monthly(f"RDS gp3 GiB ({database.instance_class})", database.storage_gib, prices.rds_gp3_gb_month)
    monthly("EBS gp3 GiB (claims)", inventory.volume_gib, prices.ebs_gp3_gb_month)
    monthly("S3 Standard GB", inventory.s3_gb, prices.s3_standard_gb_month)
    monthly("KMS customer managed key", inventory.kms_keys, prices.kms_key_month)

    total = sum(line.hourly_usd for line in lines)
    return CostEstimate(hourly_usd=total, monthly_usd=total * HOURS_PER_MONTH, lines=lines)
