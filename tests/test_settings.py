"""Invalid configuration fails before any resource exists, with one message naming the fix."""

from __future__ import annotations

import pytest
import yaml

from stacks.catalog import phases_for
from stacks.settings import ConfigError
from tests.harness import REPO, ProgramRun, failed_stack, run_stack


def failing_run(stack: str, **overrides: str) -> tuple[str, ProgramRun]:
    """The error text of a run expected to fail, and the run with what it registered."""
    run = failed_stack(stack, overrides)
    assert isinstance(run.error, ConfigError), run.error
    return str(run.error), run


def test_default_local_config_is_valid():
    run = run_stack("local")
    assert run.resources


@pytest.mark.parametrize(
    ("stack", "overrides", "expected"),
    [
        (
            "local",
            {"phase": "obsrvability"},
            [
                "phase 'obsrvability' is unknown",
                "observability, agents, kubernetes",
                "pulumi config set llm-infra-lab:phase observability",
            ],
        ),
        (
            "local",
            {"phase": "production"},
            ["phase 'production' runs on stack dev, not 'local'", "pulumi config set llm-infra-lab:phase"],
        ),
        ("local", {"phase": ""}, ["phase is not set", "pulumi config set llm-infra-lab:phase observability"]),
        (
            "local",
            {"bindAddress": "localhost:3000"},
            ["bindAddress must be an IP address, got 'localhost:3000'", "pulumi config set llm-infra-lab:bindAddress"],
        ),
        (
            "local",
            {"grafanaPort": "70000"},
            ["grafanaPort must be a TCP port between 1 and 65535, got '70000'", "llm-infra-lab:grafanaPort 3000"],
        ),
        ("local", {"retainData": "yes"}, ["retainData must be true or false, got 'yes'"]),
        ("dev", {"phase": "observability"}, ["phase 'observability' runs on stack local, not 'dev'"]),
        (
            "local",
            {"phase": "kubernetes", "gatewayDomain": "lab_local"},
            [
                "gatewayDomain must be a DNS name like localhost, got 'lab_local'",
                "llm-infra-lab:gatewayDomain localhost",
            ],
        ),
        (
            "local",
            {"phase": "kubernetes", "clusterHostAddress": "http://host:4317"},
            ["clusterHostAddress must be a DNS name", "llm-infra-lab:clusterHostAddress host.minikube.internal"],
        ),
        ("local", {"phase": "kubernetes", "kubeContext": " "}, ["kubeContext is not set", ":kubeContext minikube"]),
        ("dev", {"phase": "production", "domain": ""}, ["domain is not set", "llm-infra-lab:domain lab.example.com"]),
        ("dev", {"phase": "production", "domain": "lab"}, ["domain must be a public DNS name you control"]),
        (
            "dev",
            {"phase": "production", "acmeEmail": "ops@example.org"},
            ["is at a domain Let's Encrypt refuses", "llm-infra-lab:acmeEmail you@your-domain.dev"],
        ),
        ("dev", {"phase": "production", "acmeEmail": "ops"}, ["acmeEmail 'ops' is not an e-mail address"]),
        ("dev", {"phase": "production", "acmeEmail": "ops@lab.dev1"}, ["'ops@lab.dev1' is not an e-mail address"]),
        (
            "dev",
            {"phase": "production", "acmeEnvironment": "prod"},
            ["acmeEnvironment must be one of staging, production, got 'prod'"],
        ),
        (
            "dev",
            {"phase": "production", "dbInstanceClass": "db.r7g.16xlarge"},
            ["dbInstanceClass db.r7g.16xlarge unknown to the cost model", ":dbInstanceClass db.t4g.micro"],
        ),
        (
            "dev",
            {"phase": "production", "workloadNodeMinSize": "3", "workloadNodeDesiredSize": "2"},
            ["workloadNode sizes need min <= desired <= max, got min 3, desired 2, max 4", ":workloadNodeMaxSize 4"],
        ),
        ("dev", {"phase": "production", "dbBackupRetentionDays": "0"}, ["dbBackupRetentionDays must be a whole"]),
        (
            "dev",
            {"phase": "production", "servedModelUri": "s3://someone-elses-bucket/models/iris"},
            ["servedModelUri must be a model directory in this stack's artifact bucket", "model_uri.py"],
        ),
        ("dev", {"clusterAdminArn": ""}, ["clusterAdminArn is not set", ":clusterAdminArn arn:aws:iam::"]),
        (
            "dev",
            {"clusterAdminArn": "arn:aws:sts::123456789012:assumed-role/lab-admin/alice"},
            ["is a role session; give the role itself", "aws iam get-role"],
        ),
        ("dev", {"clusterAdminArn": "lab-admin"}, ["clusterAdminArn must be an IAM user or role ARN"]),
    ],
    ids=[
        "unknown-phase",
        "phase-of-other-stack",
        "empty-phase",
        "bad-bind",
        "bad-port",
        "bad-bool",
        "dev-local",
        "bad-domain",
        "bad-cluster-host",
        "no-context",
        "no-domain",
        "bare-domain",
        "refused-email",
        "bad-email",
        "numeric-tld-email",
        "bad-acme",
        "unpriced-database",
        "workload-sizes",
        "no-backups",
        "model-elsewhere",
        "no-cluster-admin",
        "admin-session",
        "admin-not-an-arn",
    ],
)
def test_invalid_config_is_rejected_before_any_resource(stack, overrides, expected):
    message, run = failing_run(stack, **overrides)
    for fragment in expected:
        assert fragment in message
    assert run.resources == []


def test_every_problem_is_reported_in_one_message():
    message, run = failing_run("local", phase="nope", grafanaPort="0", bindAddress="not-an-ip")
    assert message.count("fix: pulumi config set") == 3
    assert run.resources == []


def test_unknown_stack_names_the_environments():
    message, run = failing_run("staging")
    assert "stack 'staging' is not an environment" in message
    assert "pulumi stack select local" in message
    assert run.resources == []


def test_every_stack_file_names_a_phase_of_its_stack():
    for stack in ("local", "dev"):
        config = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert config["llm-infra-lab:phase"] in {p.name for p in phases_for(stack)}


def test_production_settings_are_read_only_for_production():
    """A platform stack without a domain or e-mail is valid: the phase that needs them asks for them."""
    run = run_stack("dev", {"phase": "platform", "domain": "", "acmeEmail": ""})
    assert run.error is None and run.resources
