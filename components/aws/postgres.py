"""The PostgreSQL database MLflow keeps runs, params and metrics in, on RDS in the private subnets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws.cost import RdsInstance
from components.runtime.spec import data_options

POSTGRES_PORT = 5432
ENGINE_VERSION = "18"
"""PostgreSQL 18, the newest major RDS offers (GA on RDS since 18.1, November 2025).

Only the major is pinned: with automatic minor upgrades on, RDS moves the instance to each new minor in the
maintenance window and retires old ones; a configured minor would then read as drift and the next `pulumi up`
would try a downgrade RDS refuses. The provider keeps a major-only version and reports the running one as
`engine_version_actual`.
"""
OLDEST_MAJOR = 15
"""Older majors are past, or at, the end of community support (14's ended in November 2026)."""
BACKUP_WINDOW = "03:00-03:30"
MAINTENANCE_WINDOW = "sun:04:00-sun:04:30"
"""UTC, after the backup window: the two must not overlap."""
SLOW_STATEMENT_MS = 1000

_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")
"""An RDS instance identifier: 1-63 lowercase letters, digits or '-', from a letter, no '--', no trailing '-'."""
_POSTGRES_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
"""A database or user name PostgreSQL takes unquoted, and a URL carries as is."""
_RESERVED_USERNAMES = frozenset({"postgres", "rdsadmin", "admin", "root", "public"})


@dataclass(frozen=True)
class PostgresDatabaseArgs:
    name: str
    """The RDS instance identifier, and the stem of its subnet, security and parameter groups."""
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets in two or three zones: RDS wants a subnet group spanning at least two."""
    client_security_group_id: pulumi.Input[str]
    """The only group admitted on the PostgreSQL port: the one the cluster's nodes (and so its pods) use."""
    retain: bool
    """Deletion protection on and the instance `protect`ed; false only for a deliberate full teardown."""
    database: str = "mlflow"
    username: str = "mlflow"
    engine_version: str = ENGINE_VERSION
    """A major version; RDS picks and upgrades the minor."""
    instance_class: str = "db.t4g.micro"
    storage_gib: int = 20
    max_storage_gib: int | None = None
    """Storage autoscaling's ceiling; None is twice storage_gib, at least 100; equal to storage_gib turns it off."""
    backup_retention_days: int = 7

    def __post_init__(self) -> None:
        if not _IDENTIFIER.match(self.name):
            raise ValueError(
                f"database name {self.name!r} is not an RDS identifier: 1-63 lowercase letters, digits or '-', "
                "starting with a letter, without '--' or a trailing '-'"
            )
        for field, value in (("database", self.database), ("username", self.username)):
            if not _POSTGRES_NAME.match(value):
                raise ValueError(
                    f"{field} {value!r} must be 1-63 lowercase letters, digits or '_', starting with a letter"
                )
        if self.username in _RESERVED_USERNAMES:
            raise ValueError(f"username {self.username!r} is reserved by PostgreSQL or RDS: choose another")
        if not 2 <= len(self.subnet_ids) <= 3:
            raise ValueError(f"subnet_ids needs the private subnets of 2 or 3 zones, got {len(self.subnet_ids)}")
        if not self.engine_version.isdigit() or int(self.engine_version) < OLDEST_MAJOR:
            raise ValueError(
                f"engine_version must be a PostgreSQL major version, {OLDEST_MAJOR} or later, such as "
                f"{ENGINE_VERSION!r} (RDS upgrades the minor), got {self.engine_version!r}"
            )
        if not self.instance_class.startswith("db."):
            raise ValueError(f"instance_class must be an RDS class such as 'db.t4g.micro', got {self.instance_class!r}")
        if not 20 <= self.storage_gib <= 65536:
            raise ValueError(f"storage_gib must be 20-65536 (gp3 limits), got {self.storage_gib}")
        # RDS refuses a ceiling less than 10% above the allocated storage.
        if self.storage_ceiling_gib != self.storage_gib and self.storage_ceiling_gib * 10 < self.storage_gib * 11:
            raise ValueError(
                f"max_storage_gib must equal storage_gib (no autoscaling) or be at least 10% above it, "
                f"got {self.max_storage_gib} for {self.storage_gib}"
            )
        if not 1 <= self.backup_retention_days <= 35:
            raise ValueError(
                f"backup_retention_days must be 1-35 (0 would turn backups off), got {self.backup_retention_days}"
            )

    @property
    def storage_ceiling_gib(self) -> int:
        return self.max_storage_gib if self.max_storage_gib is not None else max(100, 2 * self.storage_gib)

    @property
    def parameter_group_family(self) -> str:
        return f"postgres{self.engine_version}"


def postgres_uri(username: str, password: str, host: str, port: int, database: str) -> str:
    """A libpq/SQLAlchemy URL that refuses to talk without TLS; the password is URL-quoted."""
    return (
        f"postgresql://{quote(username, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}?sslmode=require"
    )


class PostgresDatabase(pulumi.ComponentResource):
    """A single-AZ RDS PostgreSQL instance no one outside the cluster can reach, over TLS only.

    Single-AZ: a standby would double the instance and storage bill, and losing the zone means a point-in-time
    restore from the automated backups, which a lab's run history can afford. Storage is
    encrypted with the AWS-managed RDS key (no key to pay for). Performance Insights and Enhanced Monitoring are
    off: both bill per instance and a lab's database has nothing to tune.

    Every deletion takes a final snapshot, with `retain` or without: a deliberate teardown still leaves a few
    cents' worth of snapshot to restore from, deleted by hand once it is surely not needed
    (`aws rds delete-db-snapshot`). Its name carries a random suffix drawn with the instance, so a stack torn
    down and built again does not collide with its earlier snapshot.
    """

    def __init__(self, name: str, args: PostgresDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:PostgresDatabase", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name_prefix=f"{args.name}-",
            description=f"Private subnets of {args.name}",
            subnet_ids=list(args.subnet_ids),
            opts=child,
        )
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            name_prefix=f"{args.name}-",
            description=f"PostgreSQL {args.name}: only from the cluster nodes",
            vpc_id=args.vpc_id,
            # No egress (the provider drops AWS's default allow-all): replies need none; the database calls no one.
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster",
            security_group_id=security_group.id,
            description="PostgreSQL from the cluster nodes and their pods",
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            referenced_security_group_id=args.client_security_group_id,
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            name_prefix=f"{args.name}-",
            family=args.parameter_group_family,
            description=f"{args.name}: TLS only, slow statements and lock waits logged",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_min_duration_statement", value=str(SLOW_STATEMENT_MS)),
                aws.rds.ParameterGroupParameterArgs(name="log_lock_waits", value="1"),
                aws.rds.ParameterGroupParameterArgs(name="log_temp_files", value="0"),
            ],
            opts=child,
        )

        # The instance keeps the password it was created or last modified with: it lives as long as the data.
        password = random.RandomPassword(
            f"{name}-password",
            length=40,
            # Letters and digits only: nothing RDS forbids (/ @ " ' space) and nothing a URL must escape.
            special=False,
            opts=pulumi.ResourceOptions(parent=self, **data_options(args.retain)),
        )
        snapshot_suffix = random.RandomId(
            f"{name}-final-snapshot-suffix", byte_length=4, keepers={"identifier": args.name}, opts=child
        )

        self.instance = aws.rds.Instance(
            f"{name}-instance",
            identifier=args.name,
            engine="postgres",
            engine_version=args.engine_version,
            # Past standard support RDS upgrades the major instead of billing Extended Support.
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            instance_class=args.instance_class,
            allocated_storage=args.storage_gib,
            # 0 turns storage autoscaling off.
            max_allocated_storage=args.storage_ceiling_gib if args.storage_ceiling_gib > args.storage_gib else 0,
            storage_type="gp3",
            storage_encrypted=True,
            db_name=args.database,
            username=args.username,
            password=password.result,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=False,
            backup_retention_period=args.backup_retention_days,
            backup_window=BACKUP_WINDOW,
            maintenance_window=MAINTENANCE_WINDOW,
            copy_tags_to_snapshot=True,
            # Automated backups outlive a retained instance's deletion, for a point-in-time restore.
            delete_automated_backups=not args.retain,
            deletion_protection=args.retain,
            skip_final_snapshot=False,
            final_snapshot_identifier=snapshot_suffix.hex.apply(lambda suffix: f"{args.name}-final-{suffix}"),
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            apply_immediately=False,
            performance_insights_enabled=False,
            monitoring_interval=0,
            iam_database_authentication_enabled=False,
            opts=pulumi.ResourceOptions(parent=self, **data_options(args.retain)),
        )

        self._args = args
        self.address: pulumi.Output[str] = self.instance.address
        self.port: int = POSTGRES_PORT
        self.database: str = args.database
        self.username: str = args.username
        self.password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        self.uri: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(password.result, self.instance.address).apply(
                lambda values: postgres_uri(args.username, values[0], values[1], POSTGRES_PORT, args.database)
            )
        )
        self.security_group_id: pulumi.Output[str] = security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database": self.database,
                "username": self.username,
                "uri": self.uri,
                "securityGroupId": self.security_group_id,
                "engineVersionActual": self.instance.engine_version_actual,
            }
        )

    def cost_item(self) -> RdsInstance:
        """What the instance costs as the cost model counts it: its class and the storage first allocated."""
        return RdsInstance(instance_class=self._args.instance_class, storage_gib=self._args.storage_gib)
