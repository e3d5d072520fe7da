"""MLflow's PostgreSQL on RDS: private, encrypted, backed up, TLS only, open to the cluster alone, kept on delete."""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pulumi
import pytest

from components.aws import cost
from components.aws.postgres import POSTGRES_PORT, PostgresDatabase, PostgresDatabaseArgs, postgres_uri
from policies.llm_infra_lab_policies.aws import rds_backups_and_tls
from tests.aws.support import AwsRun, run_aws
from tests.aws.test_policies import policy_resources, violations
from tests.policies.test_policies import validate

INSTANCE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
PASSWORD = "random:index/randomPassword:RandomPassword"

IDENTIFIER = "llm-infra-lab-dev-mlflow"
ADDRESS = f"{IDENTIFIER}.c9akciq32.us-east-1.rds.amazonaws.com"
SNAPSHOT_SUFFIX = "a1b2c3d4"
PRIVATE_SUBNETS = ["subnet-private-a", "subnet-private-c"]
NODE_GROUP = "sg-mockcluster"
COMPUTED = {"mlflow-db-instance": {"address": ADDRESS}, "mlflow-db-final-snapshot-suffix": {"hex": SNAPSHOT_SUFFIX}}


def db_args(**changes: Any) -> PostgresDatabaseArgs:
    return PostgresDatabaseArgs(
        **{
            "name": IDENTIFIER,
            "vpc_id": "vpc-lab",
            "subnet_ids": PRIVATE_SUBNETS,
            "client_security_group_id": NODE_GROUP,
            "retain": True,
            **changes,
        }
    )


@functools.cache
def database(retain: bool = True, engine_version: str = "18") -> AwsRun:
    def program():
        db = PostgresDatabase("mlflow-db", db_args(retain=retain, engine_version=engine_version))
        pulumi.export("uri", db.uri)
        pulumi.export("password", db.password)
        pulumi.export("address", db.address)

    return run_aws(program, COMPUTED)


def instance(run: AwsRun):
    return run.named(INSTANCE, "mlflow-db-instance")


def test_the_instance_lives_in_a_subnet_group_of_the_private_subnets_only():
    run = database()
    (subnet_group,) = run.of_type(SUBNET_GROUP)
    assert subnet_group["subnetIds"] == PRIVATE_SUBNETS
    assert subnet_group["namePrefix"] == f"{IDENTIFIER}-"
    db = instance(run)
    assert db["dbSubnetGroupName"] == subnet_group.name  # the mocks report a resource's name as its logical name
    assert run.property_dependencies[db.urn]["dbSubnetGroupName"] == {subnet_group.urn}


def test_the_instance_is_private_encrypted_postgres_18_on_gp3():
    db = instance(database())
    assert db["identifier"] == IDENTIFIER
    assert (db["engine"], db["engineVersion"]) == ("postgres", "18")
    assert db["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert db["publiclyAccessible"] is False
    assert db["storageEncrypted"] is True
    assert db["storageType"] == "gp3"
    assert (db["allocatedStorage"], db["maxAllocatedStorage"]) == (20, 100)
    assert (db["instanceClass"], db["multiAz"]) == ("db.t4g.micro", False)
    assert (db["dbName"], db["username"], db["port"]) == ("mlflow", "mlflow", POSTGRES_PORT)


def test_minor_upgrades_are_automatic_and_nothing_else_changes_outside_the_window():
    db = instance(database())
    assert db["autoMinorVersionUpgrade"] is True
    assert db["allowMajorVersionUpgrade"] is False
    assert db["applyImmediately"] is False
    assert db["performanceInsightsEnabled"] is False
    assert db["monitoringInterval"] == 0


def _minutes(day_time: str) -> int:
    hours, minutes = day_time.split(":")
    return int(hours) * 60 + int(minutes)


def test_backups_are_kept_for_a_week_in_a_window_clear_of_maintenance():
    db = instance(database())
    assert db["backupRetentionPeriod"] == 7
    assert db["copyTagsToSnapshot"] is True
    backup_start, backup_end = (_minutes(t) for t in db["backupWindow"].split("-"))
    maintenance_start, maintenance_end = (_minutes(t.split(":", 1)[1]) for t in db["maintenanceWindow"].split("-"))
    assert backup_end - backup_start >= 30, "RDS wants a backup window of at least 30 minutes"
    assert backup_end <= maintenance_start or maintenance_end <= backup_start


def test_retain_protects_the_instance_and_its_password_and_blocks_deletion():
    run = database(retain=True)
    db = instance(run)
    assert (db.protect, db.retain_on_delete) == (True, True)
    assert db["deletionProtection"] is True
    assert db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"] == f"{IDENTIFIER}-final-{SNAPSHOT_SUFFIX}"
    assert db["deleteAutomatedBackups"] is False
    password = run.named(PASSWORD, "mlflow-db-password")
    assert (password.protect, password.retain_on_delete) == (True, True)


def test_a_deliberate_teardown_can_delete_the_instance_but_still_snapshots_it():
    run = database(retain=False)
    db = instance(run)
    assert (db.protect, db.retain_on_delete) == (False, False)
    assert db["deletionProtection"] is False
    assert db["skipFinalSnapshot"] is False
    assert db["finalSnapshotIdentifier"] == f"{IDENTIFIER}-final-{SNAPSHOT_SUFFIX}"
    assert db["deleteAutomatedBackups"] is True
    assert run.named(PASSWORD, "mlflow-db-password").protect is False


def test_the_final_snapshot_suffix_is_drawn_once_per_instance_identifier():
    run = database()
    (suffix,) = run.of_type("random:index/randomId:RandomId")
    assert suffix["keepers"] == {"identifier": IDENTIFIER}
    assert suffix["byteLength"] == 4
    assert run.property_dependencies[instance(run).urn]["finalSnapshotIdentifier"] == {suffix.urn}


def test_only_the_cluster_nodes_reach_postgres_and_nothing_else_is_open():
    run = database()
    (group,) = run.of_type(SECURITY_GROUP)
    assert group["vpcId"] == "vpc-lab"
    assert "ingress" not in group.inputs and "egress" not in group.inputs, "no inline rules"
    (rule,) = run.of_type(INGRESS)
    assert rule["securityGroupId"] == f"{group.name}-id"
    assert (rule["ipProtocol"], rule["fromPort"], rule["toPort"]) == ("tcp", POSTGRES_PORT, POSTGRES_PORT)
    assert rule["referencedSecurityGroupId"] == NODE_GROUP
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    other_rules = (
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:ec2/securityGroupRule:SecurityGroupRule",
    )
    assert [r.name for r in run.resources if r.type in other_rules] == []
    assert instance(run)["vpcSecurityGroupIds"] == [f"{group.name}-id"]


@pytest.mark.parametrize("engine_version", ["18", "17"])
def test_the_parameter_group_forces_tls_for_the_engines_major_version(engine_version):
    run = database(engine_version=engine_version)
    (group,) = run.of_type(PARAMETER_GROUP)
    assert group["family"] == f"postgres{engine_version}"
    parameters = {p["name"]: p["value"] for p in group["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == "1000"
    db = instance(run)
    assert db["engineVersion"] == engine_version
    assert run.property_dependencies[db.urn]["parameterGroupName"] == {group.urn}


def test_the_password_is_generated_long_url_safe_and_only_passed_as_a_secret():
    run = database()
    password = run.named(PASSWORD, "mlflow-db-password")
    assert password["length"] >= 32
    assert password["special"] is False, "RDS forbids / @ \" ' and space; a URL would need the rest escaped"
    db = instance(run)
    assert db.has_secret_inputs
    assert run.property_dependencies[db.urn]["password"] == {password.urn}
    assert "password" in run.run.secret_outputs
    assert run.run.outputs["password"] == db["password"]


def test_the_uri_is_secret_and_reaches_the_database_over_tls():
    run = database()
    assert "uri" in run.run.secret_outputs
    uri = urlsplit(run.run.outputs["uri"])
    assert uri.scheme == "postgresql"
    assert (uri.username, unquote(uri.password or "")) == ("mlflow", instance(run)["password"])
    assert (uri.hostname, uri.port, uri.path) == (ADDRESS, POSTGRES_PORT, "/mlflow")
    assert parse_qs(uri.query) == {"sslmode": ["require"]}


def test_a_password_with_url_syntax_survives_the_uri():
    password = "p@ss/w:rd%20?#x"
    uri = urlsplit(postgres_uri("mlflow", password, ADDRESS, POSTGRES_PORT, "mlflow"))
    assert (uri.hostname, uri.port, uri.path) == (ADDRESS, POSTGRES_PORT, "/mlflow")
    assert unquote(uri.password or "") == password


def test_the_cost_model_prices_what_the_component_declares():
    items: list[cost.RdsInstance] = []
    run_aws(lambda: items.append(PostgresDatabase("mlflow-db", db_args(storage_gib=30)).cost_item()), COMPUTED)
    assert items == [cost.RdsInstance(instance_class="db.t4g.micro", storage_gib=30)]
    lines = {
        line.item: line for line in cost.estimate(cost.CostInventory(region="us-east-1", rds_instances=items)).lines
    }
    assert lines["RDS PostgreSQL db.t4g.micro single-AZ"].hourly_usd == pytest.approx(0.016)
    assert lines["RDS gp3 GiB (db.t4g.micro)"].quantity == 30


@pytest.mark.parametrize("retain", [True, False])
def test_the_policy_pack_passes_the_database(retain):
    assert violations(policy_resources(database(retain=retain))) == []


def test_the_policy_pack_catches_tls_or_backups_turned_off():
    run = database()
    group, db = run.of_type(PARAMETER_GROUP)[0], instance(run)
    no_tls = [{**p, "value": "0"} if p["name"] == "rds.force_ssl" else p for p in group["parameters"]]
    found = validate(rds_backups_and_tls, group.type, {**group.inputs, "parameters": no_tls})
    assert len(found) == 1 and "rds.force_ssl to 1 (postgres18)" in found[0]
    found = validate(rds_backups_and_tls, db.type, {**db.inputs, "backupRetentionPeriod": 0})
    assert len(found) == 1 and "automated backups are off" in found[0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "MLflow"}, "is not an RDS identifier"),
        ({"name": "1-mlflow"}, "starting with a letter"),
        ({"name": "lab--mlflow"}, "without '--'"),
        ({"name": "lab-mlflow-"}, "a trailing '-'"),
        ({"name": "x" * 64}, "1-63 lowercase"),
        ({"database": "ml-flow"}, "database 'ml-flow' must be 1-63 lowercase letters, digits or '_'"),
        ({"username": "Admin"}, "username 'Admin' must be"),
        ({"username": "rdsadmin"}, "reserved by PostgreSQL or RDS"),
        ({"subnet_ids": ["subnet-a"]}, "subnet_ids needs the private subnets of 2 or 3 zones, got 1"),
        ({"engine_version": "18.4"}, "must be a PostgreSQL major version"),
        ({"engine_version": "14"}, "15 or later"),
        ({"instance_class": "t4g.micro"}, "instance_class must be an RDS class"),
        ({"storage_gib": 10}, "storage_gib must be 20-65536"),
        ({"max_storage_gib": 21}, "at least 10% above it, got 21 for 20"),
        ({"max_storage_gib": 10}, "max_storage_gib must equal storage_gib"),
        ({"storage_gib": 100, "max_storage_gib": 105}, "got 105 for 100"),
        ({"backup_retention_days": 0}, "0 would turn backups off"),
        ({"backup_retention_days": 36}, "backup_retention_days must be 1-35"),
    ],
)
def test_invalid_database_args_are_refused(changes, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        db_args(**changes)


@pytest.mark.parametrize(
    ("storage", "ceiling", "sent"), [(50, 50, 0), (50, None, 100), (300, None, 600), (300, 400, 400)]
)
def test_the_storage_ceiling_defaults_to_twice_the_storage_and_equal_turns_autoscaling_off(storage, ceiling, sent):
    args = db_args(storage_gib=storage, max_storage_gib=ceiling)
    run = run_aws(lambda: PostgresDatabase("mlflow-db", args), COMPUTED)
    assert (instance(run)["allocatedStorage"], instance(run)["maxAllocatedStorage"]) == (storage, sent)
