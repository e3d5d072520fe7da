"""The one place that reads `pulumi.Config`: typed, validated settings for a stack.

Every problem found is collected and raised together, before any resource exists, as one
`ConfigError` naming the `pulumi config set` that fixes each.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

import pulumi

from components.aws.cost import PRICES
from components.aws.eks import CAPACITY_TYPES
from components.gateway.cert_manager import ACME_SERVERS, acme_contact_problem
from components.workloads.agent import LlmBackend
from stacks.catalog import PHASES, STACKS, Phase, phase_named, phases_for

PROJECT = "llm-infra-lab"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration; RunError so Pulumi prints the message without a traceback."""


LLM_PROVIDERS = ("simulated", "anthropic", "openai")
ACME_ENVIRONMENTS = tuple(ACME_SERVERS)
_IAM_PRINCIPAL = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:(user|role)/[\w+=,.@/-]{1,512}")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class LocalSettings:
    docker_host: str | None
    bind_address: str
    grafana_port: int
    kube_context: str
    cluster_host_address: str
    """How pods on the local cluster reach this machine."""
    gateway_domain: str


@dataclass(frozen=True)
class AwsSettings:
    region: str
    vpc_cidr: str
    availability_zones: int
    nat_gateway: bool
    api_allowed_cidrs: tuple[str, ...]
    gateway_allowed_cidrs: tuple[str, ...]
    """Who may reach the gateway's load balancer: the API's CIDRs unless set; opening it is explicit."""
    cluster_admin_arn: str
    """Named in the stack, not looked up from whoever runs it: a preview under another role replaces nothing."""
    node_instance_type: str
    node_capacity_type: str
    node_min: int
    node_desired: int
    node_max: int
    node_disk_gib: int


@dataclass(frozen=True)
class NodeGroupSize:
    minimum: int
    desired: int
    maximum: int


@dataclass(frozen=True)
class ProductionSettings:
    """What phase production adds on the dev stack: a public domain, its certificates, a database, nodes."""

    domain: str
    """Every exposed service is https://<service>.<domain>; *.<domain> points at the load balancer."""
    acme_email: str
    acme_environment: str
    """Let's Encrypt staging (untrusted certificates, generous limits) or production."""
    db_instance_class: str
    db_storage_gib: int
    db_backup_retention_days: int
    workload_nodes: NodeGroupSize
    served_model_uri: str | None
    """The promoted model in the artifact bucket, under MLflow's prefix; None until one is promoted."""


@dataclass(frozen=True)
class LlmSettings:
    """Which LLM the agents call (the key is a Pulumi secret and stays an Output), and its budget."""

    backend: LlmBackend
    monthly_budget_usd: float


@dataclass(frozen=True)
class Settings:
    stack: str
    phase: Phase
    retain_data: bool
    local: LocalSettings | None
    aws: AwsSettings | None
    llm: LlmSettings
    production: ProductionSettings | None = None

    @property
    def name_prefix(self) -> str:
        return f"{PROJECT}-{self.stack}"


def config_set(key: str, value: str) -> str:
    return f"pulumi config set {PROJECT}:{key} {value}"


class _Reader:
    """Reads raw config strings and records what is wrong with them."""

    def __init__(self, config: pulumi.Config):
        self._config = config
        self.problems: list[str] = []

    def problem(self, key: str, what: str, example: str) -> None:
        self.problems.append(f"{what}\n    fix: {config_set(key, example)}")

    def string(self, key: str, example: str) -> str:
        value = self._config.get(key)
        if value is None or not value.strip():
            self.problem(key, f"{key} is not set", example)
            return ""
        return value.strip()

    def optional_string(self, key: str) -> str | None:
        value = self._config.get(key)
        return value.strip() if value and value.strip() else None

    def boolean(self, key: str, example: str) -> bool:
        value = self.string(key, example).lower()
        if value in ("true", "false"):
            return value == "true"
        if value:
            self.problem(key, f"{key} must be true or false, got {value!r}", example)
        return False

    def port(self, key: str, example: str) -> int:
        value = self.string(key, example)
        if value.isdigit() and 1 <= int(value) <= 65535:
            return int(value)
        if value:
            self.problem(key, f"{key} must be a TCP port between 1 and 65535, got {value!r}", example)
        return 0

    def positive_number(self, key: str, example: str) -> float:
        value = self.string(key, example)
        try:
            number = float(value)
        except ValueError:
            number = 0.0
        if number <= 0 and value:
            self.problem(key, f"{key} must be a positive number, got {value!r}", example)
        return number

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, choices[0])
        if value and value not in choices:
            self.problem(key, f"{key} must be one of {', '.join(choices)}, got {value!r}", choices[0])
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        return self._config.get_secret(key)

    def hostname(self, key: str, example: str) -> str:
        value = self.string(key, example).lower()
        labels = value.split(".")
        if value and not (len(value) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)):
            self.problem(key, f"{key} must be a DNS name like {example}, got {value!r}", example)
        return value

    def integer(self, key: str, example: str, low: int, high: int) -> int:
        value = self.string(key, example)
        if value.isdigit() and low <= int(value) <= high:
            return int(value)
        if value:
            self.problem(key, f"{key} must be a whole number from {low} to {high}, got {value!r}", example)
        return low

    def networks(self, key: str, example: str, *, smallest: int = 32, largest: int = 0) -> tuple[str, ...]:
        """Comma-separated IPv4 CIDRs with prefix lengths between `largest` and `smallest`."""
        networks = []
        for item in filter(None, (part.strip() for part in self.string(key, example).split(","))):
            try:
                network = ipaddress.IPv4Network(item)
            except ValueError:
                self.problem(key, f"{key}: {item!r} is not an IPv4 CIDR like {example}", example)
                continue
            if not largest <= network.prefixlen <= smallest:
                self.problem(key, f"{key}: {item} must be a /{largest} to /{smallest}", example)
            networks.append(str(network))
        return tuple(networks)

    def node_group_size(self, stem: str, examples: tuple[int, int, int], lowest: int) -> NodeGroupSize:
        """`<stem>MinSize`, `<stem>DesiredSize` and `<stem>MaxSize`, in that order."""
        low, desired, high = (
            self.integer(f"{stem}{which}Size", str(example), lowest if which != "Max" else 1, 20)
            for which, example in zip(("Min", "Desired", "Max"), examples, strict=True)
        )
        if not low <= desired <= high:
            self.problem(
                f"{stem}MaxSize",
                f"{stem} sizes need min <= desired <= max, got min {low}, desired {desired}, max {high}",
                str(max(low, desired, high)),
            )
        return NodeGroupSize(low, desired, high)

    def acme_contact(self, key: str, example: str) -> str:
        value = self.string(key, example)
        if value and (problem := acme_contact_problem(value)):
            self.problem(key, f"{key} {value!r} {problem}; give a mailbox you read, like {example}", example)
        return value

    def iam_principal(self, key: str, example: str) -> str:
        value = self.string(key, example)
        if ":assumed-role/" in value:
            self.problem(
                key,
                f"{key} {value!r} is a role session; give the role itself, like {example} "
                "(aws iam get-role --role-name <role> --query Role.Arn --output text)",
                example,
            )
        elif value and not _IAM_PRINCIPAL.fullmatch(value):
            self.problem(key, f"{key} must be an IAM user or role ARN like {example}, got {value!r}", example)
        return value

    def ip_address(self, key: str, example: str) -> str:
        value = self.string(key, example)
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if value:
                self.problem(key, f"{key} must be an IP address, got {value!r}", example)
        return value


def _phase(reader: _Reader, stack: str) -> Phase | None:
    name = reader.string("phase", PHASES[0].name)
    if not name:
        return None
    valid = phases_for(stack)
    choices = ", ".join(p.name for p in valid)
    phase = phase_named(name)
    if phase is None:
        reader.problem("phase", f"phase {name!r} is unknown; phases for stack {stack!r}: {choices}", valid[0].name)
        return None
    if stack not in phase.stacks:
        reader.problem(
            "phase",
            f"phase {name!r} runs on stack {' or '.join(phase.stacks)}, not {stack!r}; "
            f"phases for stack {stack!r}: {choices}",
            valid[0].name,
        )
        return None
    return phase


def load_settings() -> Settings:
    stack = pulumi.get_stack()
    if stack not in STACKS:
        raise ConfigError(
            f"stack {stack!r} is not an environment of {PROJECT}; use one of: {', '.join(STACKS)}\n"
            f"    fix: pulumi stack select {STACKS[0]}"
        )
    reader = _Reader(pulumi.Config(PROJECT))
    phase = _phase(reader, stack)
    retain_data = reader.boolean("retainData", "true")
    local = None
    if stack == "local":
        local = LocalSettings(
            docker_host=reader.optional_string("dockerHost"),
            bind_address=reader.ip_address("bindAddress", "127.0.0.1"),
            grafana_port=reader.port("grafanaPort", "3000"),
            kube_context=reader.string("kubeContext", "minikube"),
            cluster_host_address=reader.hostname("clusterHostAddress", "host.minikube.internal"),
            gateway_domain=reader.hostname("gatewayDomain", "localhost"),
        )
    aws = _aws(reader) if stack == "dev" else None
    production = (
        _production(reader, aws.region if aws else "", f"{PROJECT}-{stack}")
        if phase and phase.name == "production"
        else None
    )
    llm = _llm(reader)
    if reader.problems or phase is None:
        raise ConfigError(
            f"invalid configuration for stack {stack!r}:\n" + "\n".join(f"  - {p}" for p in reader.problems)
        )
    return Settings(
        stack=stack, phase=phase, retain_data=retain_data, local=local, aws=aws, llm=llm, production=production
    )


def _aws(reader: _Reader) -> AwsSettings:
    region = pulumi.Config("aws").get("region") or ""
    if region not in PRICES:
        reader.problems.append(
            f"aws:region must be one of the regions the cost model prices ({', '.join(PRICES)}), "
            f"got {region!r}\n    fix: pulumi config set aws:region {next(iter(PRICES))}"
        )
    allowed = reader.networks("apiAllowedCidrs", "203.0.113.10/32")
    if any(ipaddress.IPv4Network(cidr).prefixlen == 0 for cidr in allowed):
        reader.problem("apiAllowedCidrs", "apiAllowedCidrs must not open the API to everyone", "203.0.113.10/32")
    instance_type = reader.string("nodeInstanceType", "t3.medium")
    prices = PRICES.get(region)
    known = tuple(t for t in prices.ec2_on_demand_hour if t in prices.ec2_spot_hour) if prices else ()
    if known and instance_type and instance_type not in known:
        reader.problem(
            "nodeInstanceType",
            f"nodeInstanceType {instance_type} unknown to the cost model; known: {', '.join(known)}",
            "t3.medium",
        )
    nodes = reader.node_group_size("node", (1, 1, 3), lowest=0)
    vpc = reader.networks("vpcCidr", "10.42.0.0/16", smallest=20, largest=16)
    return AwsSettings(
        region=region,
        vpc_cidr=vpc[0] if vpc else "",
        availability_zones=reader.integer("availabilityZones", "2", 2, 3),
        nat_gateway=reader.boolean("natGateway", "false"),
        api_allowed_cidrs=allowed,
        gateway_allowed_cidrs=(
            reader.networks("gatewayAllowedCidrs", "203.0.113.10/32")
            if reader.optional_string("gatewayAllowedCidrs")
            else allowed
        ),
        cluster_admin_arn=reader.iam_principal("clusterAdminArn", "arn:aws:iam::123456789012:role/lab-admin"),
        node_instance_type=instance_type,
        node_capacity_type=reader.choice("nodeCapacityType", CAPACITY_TYPES),
        node_min=nodes.minimum,
        node_desired=nodes.desired,
        node_max=nodes.maximum,
        node_disk_gib=reader.integer("nodeDiskGib", "20", 20, 1000),
    )


def _served_model(reader: _Reader, name_prefix: str, region: str) -> str | None:
    """A model directory in this stack's artifact bucket, under MLflow's prefix: what KServe may read."""
    uri = reader.optional_string("servedModelUri")
    bucket = rf"{re.escape(name_prefix)}-artifacts-\d{{12}}-{re.escape(region)}"
    example = f"s3://{name_prefix}-artifacts-<account>-{region}/mlflow/1/models/m-<id>/artifacts"
    if uri and not re.fullmatch(rf"s3://{bucket}/mlflow/[\w.-]+(/[\w.-]+)*", uri):
        reader.problem(
            "servedModelUri",
            f"servedModelUri must be a model directory in this stack's artifact bucket, under mlflow/, like "
            f"{example} (ml/scripts/model_uri.py prints it), got {uri!r}",
            '"$(python ml/scripts/model_uri.py --alias champion --artifacts-destination s3://<bucket>/mlflow)"',
        )
    return uri


def _production(reader: _Reader, region: str, name_prefix: str) -> ProductionSettings:
    database_classes = tuple(PRICES[region].rds_postgres_hour) if region in PRICES else ()
    instance_class = reader.string("dbInstanceClass", "db.t4g.micro")
    if database_classes and instance_class and instance_class not in database_classes:
        reader.problem(
            "dbInstanceClass",
            f"dbInstanceClass {instance_class} unknown to the cost model; known: {', '.join(database_classes)}",
            database_classes[0],
        )
    domain = reader.hostname("domain", "lab.example.com")
    if domain and "." not in domain:
        reader.problem("domain", f"domain must be a public DNS name you control, got {domain!r}", "lab.example.com")
    return ProductionSettings(
        domain=domain,
        acme_email=reader.acme_contact("acmeEmail", "you@your-domain.dev"),
        acme_environment=reader.choice("acmeEnvironment", ACME_ENVIRONMENTS),
        db_instance_class=instance_class,
        db_storage_gib=reader.integer("dbStorageGib", "20", 20, 1000),
        db_backup_retention_days=reader.integer("dbBackupRetentionDays", "7", 1, 35),
        workload_nodes=reader.node_group_size("workloadNode", (2, 2, 4), lowest=1),
        served_model_uri=_served_model(reader, name_prefix, region),
    )


def _llm(reader: _Reader) -> LlmSettings:
    provider = reader.choice("llmProvider", LLM_PROVIDERS)
    api_key = None
    if provider in LLM_PROVIDERS[1:]:
        key_name = f"{provider}ApiKey"
        api_key = reader.secret(key_name)
        if api_key is None:
            reader.problems.append(
                f"llmProvider is {provider} but {key_name} is not set\n"
                f"    fix: pulumi config set --secret {PROJECT}:{key_name} <key>  "
                f"(or {config_set('llmProvider', 'simulated')})"
            )
    return LlmSettings(
        backend=LlmBackend(
            provider=provider,
            model=reader.optional_string("llmModel"),
            api_key=api_key,
            cheap_model=reader.optional_string("llmCheapModel"),
            routing=reader.boolean("modelRouting", "true"),
            semantic_cache=reader.boolean("semanticCache", "false"),
        ),
        monthly_budget_usd=reader.positive_number("llmMonthlyBudgetUsd", "20"),
    )
