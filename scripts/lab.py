"""The lab's lifecycle, one command each: quickstart, status, quickstop, teardown, and a DVC remote.

The Makefile's targets call this (README, "Lifecycle"); it runs with the standard library, so a fresh clone
without `.venv` still gets told what is missing. Stacks and phases come from `stacks/catalog.py`, required
settings and defaults from `Pulumi.yaml`.

- Prerequisites are checked first, all of them; each missing one is a line with the command that fixes it,
  and nothing that changes state runs until none is missing.
- Every Pulumi command names its stack (`--stack`). Commands that change something are echoed with `$`;
  reads are quiet.
- Secret values are never printed: an output marked secret shows as [secret], with the command that reads it.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stacks.catalog import MINIKUBE, STACKS, Phase, phase_named, phases_for  # noqa: E402

try:
    import yaml
except ImportError:  # no virtualenv yet: the prerequisites say so, and the settings wait for it
    yaml = None

MISSING = 2
"""Exit status when a prerequisite is missing or a command is refused: nothing was changed."""
SECRET = "[secret]"
"""How `pulumi stack output --json` shows a secret output without --show-secrets."""
PVC_TAG = "kubernetes.io/created-for/pvc/name"
"""The EBS CSI driver tags each volume it makes for a claim with these."""
PVC_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"


def say(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


# --- the project: name, virtualenv, settings ------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    name: str
    virtualenv: str
    settings: dict[str, dict[str, Any]]
    """Pulumi.yaml's typed config: key -> type, default, description. Empty without PyYAML (no virtualenv)."""

    @classmethod
    def load(cls) -> Project:
        text = (ROOT / "Pulumi.yaml").read_text()
        name = re.search(r"^name:\s*(\S+)", text, re.MULTILINE)
        assert name, "Pulumi.yaml names the project"
        if yaml is None:
            return cls(name.group(1), ".venv", {})
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return cls(document["name"], document["runtime"]["options"]["virtualenv"], document.get("config", {}))

    def key(self, setting: str) -> str:
        return f"{self.name}:{setting}"

    def required(self, stack: str, phase: Phase) -> list[str]:
        """Settings whose description says they are required on `stack` from a phase at or before `phase`."""
        order = [p.name for p in phases_for(stack)]
        required = []
        for setting, schema in self.settings.items():
            description = " ".join(str(schema.get("description", "")).split())
            scope = re.match(r"(?P<stack>[a-z]+) stack(?:, phase (?P<phase>[a-z]+))? -", description)
            if not (scope and re.search(r"\bRequired\b", description) and scope["stack"] == stack):
                continue
            if scope["phase"] is None or order.index(scope["phase"]) <= order.index(phase.name):
                required.append(setting)
        return required

    def defaults(self) -> dict[str, str]:
        return {
            self.key(setting): str(schema["default"]).lower()
            if isinstance(schema["default"], bool)
            else str(schema["default"])
            for setting, schema in self.settings.items()
            if "default" in schema
        }


# --- running commands -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.status == 0

    def json(self) -> Any:
        try:
            return json.loads(self.out) if self.ok else None
        except json.JSONDecodeError:
            return None

    def reason(self) -> str:
        lines = [line.strip() for line in (self.err or self.out).splitlines() if line.strip()]
        return lines[-1] if lines else f"exit status {self.status}"


def read(*argv: str, cwd: Path = ROOT) -> Result:
    """Runs a command that only reads, quietly."""
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return Result(127, "", f"{argv[0]}: command not found")
    return Result(done.returncode, done.stdout, done.stderr)


def run(*argv: str, cwd: Path = ROOT, shown: str | None = None, env: dict[str, str] | None = None) -> int:
    """Runs a command that changes something, echoed first, its output streamed."""
    say(f"$ {shown or shlex.join(argv)}")
    return subprocess.run(argv, cwd=cwd, env=env, check=False).returncode


def on(stack: str, *args: str) -> tuple[str, ...]:
    """A pulumi command for `stack`."""
    return ("pulumi", *args, "--stack", stack)


# --- prerequisites --------------------------------------------------------------------------------------------


@dataclass
class Checks:
    missing: list[tuple[str, str]] = field(default_factory=list)
    """What is missing, and the command that fixes it."""
    found: list[str] = field(default_factory=list)
    """What was checked and is there."""

    def need(self, ok: bool, what: str, fix: str, *, found: str = "") -> bool:
        if not ok:
            self.missing.append((what, fix))
        elif found:
            self.found.append(found)
        return ok

    def passed(self, doing: str) -> bool:
        if not self.missing:
            return True
        say(f"Missing before {doing}:")
        say(*(f"  - {what}. Fix: {fix}" for what, fix in self.missing))
        say("Nothing was changed.")
        return False


@dataclass
class Lab:
    """The stack a command works on, as Pulumi and the stack's files describe it."""

    project: Project
    stack: str
    exists: bool = False
    selected: bool = False
    config: dict[str, str | None] = field(default_factory=dict)
    """Full keys to values, defaults included; None for a secret."""
    phase: Phase | None = None

    def setting(self, name: str) -> str:
        return (self.config.get(self.project.key(name)) or "").strip()

    def need_setting(self, checks: Checks, ok: bool, what: str, name: str, value: str, *, note: str = "") -> None:
        """A setting to set; on a stack not created yet, after `pulumi stack init` (asked for once)."""
        if not ok and not self.exists and not any("pulumi stack init" in fix for _, fix in checks.missing):
            checks.need(False, f"the stack {self.stack}, to hold the settings below", f"pulumi stack init {self.stack}")
        checks.need(ok, what, f"pulumi config set {self.project.key(name)} {value} --stack {self.stack}{note}")

    @property
    def region(self) -> str:
        return (self.config.get("aws:region") or "").strip()


def check_virtualenv(checks: Checks, project: Project) -> None:
    python = ROOT / project.virtualenv / "bin" / "python"
    checks.need(
        python.exists(),
        f"the Python virtualenv {project.virtualenv} that Pulumi runs the program from",
        "bash scripts/install",
        found=project.virtualenv,
    )


def check_pulumi(checks: Checks) -> bool:
    """The CLI and a backend login (true if both work), and the passphrase a self-managed backend needs."""
    if not checks.need(bool(shutil.which("pulumi")), "the Pulumi CLI", "curl -fsSL https://get.pulumi.com | sh"):
        return False
    whoami = read("pulumi", "whoami", "--json")
    if not checks.need(whoami.ok, f"a Pulumi backend login ({whoami.reason()})", "pulumi login --local"):
        return False
    backend = str((whoami.json() or {}).get("url", ""))
    self_managed = not backend.startswith(("https://", "http://"))
    passphrase = any(os.environ.get(v) for v in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"))
    checks.need(
        passphrase or not self_managed,
        f"PULUMI_CONFIG_PASSPHRASE, which encrypts the stacks' secrets in {backend or 'the backend'}",
        "export PULUMI_CONFIG_PASSPHRASE='<your passphrase>'  (the one the stack was created with, if it exists)",
        found=f"Pulumi, backend {backend}",
    )
    return True


def listed_stacks() -> tuple[dict[str, dict[str, Any]], str | None]:
    """This project's stacks in the backend, and the selected one."""
    stacks = {entry["name"]: entry for entry in read("pulumi", "stack", "ls", "--json").json() or []}
    return stacks, next((name for name, entry in stacks.items() if entry.get("current")), None)


def default_stack(requested: str | None, current: str | None) -> str:
    return requested or (current if current in STACKS else None) or STACKS[0]


def find_stack(project: Project, requested: str | None, pulumi_ready: bool) -> Lab:
    """The requested stack, else the selected one, else the first of the catalog; with its config."""
    stacks, current = listed_stacks() if pulumi_ready else ({}, None)
    name = default_stack(requested, current)
    lab = Lab(project, name, exists=name in stacks, selected=name == current)
    if name in STACKS:
        lab.config = {**project.defaults(), **(read_config(lab) if pulumi_ready else {})}
    return lab


def read_config(lab: Lab) -> dict[str, str | None]:
    """The stack's own settings: from Pulumi, or from its committed file before `pulumi stack init`."""
    if lab.exists:
        listed = read(*on(lab.stack, "config", "--json")).json() or {}
        return {key: None if entry.get("secret") else entry.get("value") for key, entry in listed.items()}
    stack_file = ROOT / f"Pulumi.{lab.stack}.yaml"
    if yaml is None or not stack_file.exists():
        return {}
    values = (yaml.safe_load(stack_file.read_text()) or {}).get("config", {})
    return {
        key: None if isinstance(value, dict) else str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in values.items()
    }


def stack_refusal(lab: Lab) -> str | None:
    if lab.stack in STACKS:
        return None
    return f"stack {lab.stack!r} is not an environment of {lab.project.name}; use one of: {', '.join(STACKS)}"


def choose_phase(lab: Lab, requested: str | None) -> str | None:
    """Sets lab.phase: the requested one, else the configured one, else the stack's first. An error otherwise."""
    built = phases_for(lab.stack)
    names = ", ".join(p.name for p in built)
    configured = phase_named(lab.setting("phase"))
    if requested:
        phase = phase_named(requested)
        if phase not in built:
            return f"phase {requested!r} is not a phase of stack {lab.stack}; its phases: {names}"
        lab.phase = phase
    else:
        lab.phase = configured if configured in built else built[0]
    return None


def check_phase_order(checks: Checks, lab: Lab) -> None:
    """Phases go forward: a stack configured for a later phase is not taken back by a quickstart."""
    order = [p.name for p in phases_for(lab.stack)]
    configured = lab.setting("phase")
    if lab.exists and lab.phase and configured in order and order.index(configured) > order.index(lab.phase.name):
        checks.need(
            False,
            f"stack {lab.stack} is at phase {configured}, after {lab.phase.name}: phases go forward (README)",
            f"make quickstart STACK={lab.stack} PHASE={configured}",
        )


@dataclass
class Machine:
    """What the checks learnt about this machine, for the checks after them."""

    docker_os: str = ""
    aws_identity: str = ""


def docker_command(lab: Lab) -> tuple[str, ...]:
    host = lab.setting("dockerHost")
    return ("docker", "--host", host) if host else ("docker",)


def check_docker(checks: Checks, lab: Lab, machine: Machine, _sized: bool) -> None:
    if not checks.need(
        bool(shutil.which("docker")), "the Docker CLI", "install Docker: https://docs.docker.com/get-docker/"
    ):
        return
    info = read(*docker_command(lab), "info", "--format", "{{.OperatingSystem}}")
    machine.docker_os = info.out.strip()
    checks.need(
        info.ok,
        f"a running Docker engine (docker info: {info.reason()})",
        "start Docker Desktop or colima, or: sudo systemctl start docker",
        found="Docker running",
    )


def check_minikube(checks: Checks, lab: Lab, machine: Machine, sized: bool) -> None:
    """A running profile named by kubeContext; for a quickstart also as big as MINIKUBE, with its CNI."""
    install = "install it: https://minikube.sigs.k8s.io/docs/start/"
    if not checks.need(bool(shutil.which("minikube")), "minikube", install):
        return
    context = lab.setting("kubeContext")
    profiles = read("minikube", "profile", "list", "-o", "json").json() or {}
    profile = next((p for p in profiles.get("valid") or [] if p.get("Name") == context), None)
    if not checks.need(profile is not None, f"the minikube profile {context}", MINIKUBE.start_command(context)):
        return
    if not checks.need(
        read("minikube", "status", "-p", context).ok,
        f"minikube profile {context} running",
        f"minikube start -p {context}",
    ):
        return
    config = profile.get("Config") or {}
    memory, cpus = int(config.get("Memory") or 0), int(config.get("CPUs") or 0)
    cni = str((config.get("KubernetesConfig") or {}).get("CNI") or "none")
    checks.need(
        not sized or (memory >= MINIKUBE.memory_mib and cpus >= MINIKUBE.cpus and cni == MINIKUBE.cni),
        f"minikube profile {context} with {MINIKUBE.memory_mib} MiB, {MINIKUBE.cpus} CPUs and the {MINIKUBE.cni} CNI "
        f"(it has {memory} MiB, {cpus} CPUs, CNI {cni})",
        f"minikube delete -p {context} && {MINIKUBE.start_command(context)}  (deletes what the cluster holds)",
        found=f"minikube {context} running ({memory} MiB, {cpus} CPUs, CNI {cni})",
    )
    if sized and sys.platform.startswith("linux") and "Docker Desktop" not in machine.docker_os:
        check_bind_address(checks, lab, context)


def check_bind_address(checks: Checks, lab: Lab, context: str) -> None:
    """On Linux, pods reach this machine's Grafana and OTLP on minikube's network gateway, not on loopback."""
    address = lab.setting("bindAddress")
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        return
    gateway = f"\"$(docker network inspect {context} -f '{{{{(index .IPAM.Config 0).Gateway}}}}')\""
    what = f"bindAddress on minikube's network (it is {address}: on Linux pods could not reach Grafana and OTLP)"
    lab.need_setting(checks, not loopback, what, "bindAddress", gateway)


def check_aws(checks: Checks, _lab: Lab, machine: Machine, _sized: bool) -> None:
    if not checks.need(bool(shutil.which("aws")), "the AWS CLI", "install it: https://aws.amazon.com/cli/"):
        return
    identity = read("aws", "sts", "get-caller-identity", "--output", "json")
    machine.aws_identity = str((identity.json() or {}).get("Arn", ""))
    checks.need(
        identity.ok,
        f"AWS credentials (aws sts get-caller-identity: {identity.reason()})",
        "aws configure, or aws sso login --profile <profile>",
        found=f"AWS as {machine.aws_identity}",
    )


NEEDS: dict[str, Callable[[Checks, Lab, Machine, bool], None]] = {
    "docker": check_docker,
    "minikube": check_minikube,
    "aws": check_aws,
}
"""The check for each of the catalog's `Phase.needs`; `sized` asks for the full check of a quickstart."""


def check_needs(checks: Checks, lab: Lab, *, sized: bool) -> Machine:
    machine = Machine()
    assert lab.phase is not None
    for need in sorted(lab.phase.needs, key=list(NEEDS).index):
        NEEDS[need](checks, lab, machine, sized)
    return machine


def admin_arn(identity: str) -> str:
    """The IAM principal behind a caller identity: a role for an assumed-role session."""
    session = re.fullmatch(
        r"arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+", identity
    )
    if session:
        return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}"
    return identity


def setting_value_hint(setting: str, machine: Machine) -> str:
    hints = {
        "apiAllowedCidrs": '"$(curl -s https://checkip.amazonaws.com)/32"',
        "clusterAdminArn": admin_arn(machine.aws_identity)
        or '"$(aws sts get-caller-identity --query Arn --output text)"',
        "domain": "<a DNS name you control>",
        "acmeEmail": "<a mailbox you read, not at example.com>",
    }
    return hints.get(setting, "<value>")


def check_settings(checks: Checks, lab: Lab, machine: Machine) -> None:
    assert lab.phase is not None
    required = lab.project.required(lab.stack, lab.phase)
    if required and all(lab.setting(setting) for setting in required):
        checks.found.append(f"settings {', '.join(required)}")
    for setting in required:
        note = ""
        if setting == "clusterAdminArn" and ":assumed-role/" in machine.aws_identity:
            note = "  (a role with a path: aws iam get-role --role-name <role> --query Role.Arn --output text)"
        what = f"the setting {setting}, required in phase {lab.phase.name}"
        value = setting_value_hint(setting, machine)
        lab.need_setting(checks, bool(lab.setting(setting)), what, setting, value, note=note)


def prepare(requested_stack: str | None, *, doing: str, project: Project) -> tuple[Lab, Checks, bool]:
    """The checks every command starts with: virtualenv, Pulumi, the stack."""
    checks = Checks()
    check_virtualenv(checks, project)
    pulumi_ready = check_pulumi(checks)
    lab = find_stack(project, requested_stack, pulumi_ready)
    refusal = stack_refusal(lab)
    if refusal:
        say(refusal, f"Nothing was changed; e.g. make {doing} STACK={STACKS[0]}")
    return lab, checks, refusal is None


# --- outputs and state ----------------------------------------------------------------------------------------


def stack_outputs(lab: Lab) -> dict[str, Any]:
    return read(*on(lab.stack, "stack", "output", "--json")).json() or {}


@dataclass(frozen=True)
class Resource:
    urn: str
    type: str
    name: str
    protect: bool
    physical: str
    dependencies: tuple[str, ...]

    @property
    def managed(self) -> bool:
        """A resource a provider manages: not a component (the program's grouping), a provider or the stack."""
        package, _, rest = self.type.partition(":")
        return package != "pulumi" and "/" in rest.split(":", 1)[0]


def state(lab: Lab) -> list[Resource]:
    """The stack's resources from `pulumi stack export` (which keeps secrets encrypted)."""
    return exported_resources(read(*on(lab.stack, "stack", "export")).json() or {})


def exported_resources(exported: dict[str, Any]) -> list[Resource]:
    resources = []
    for entry in (exported.get("deployment") or {}).get("resources") or []:
        outputs = entry.get("outputs") or {}
        metadata = outputs.get("metadata") if isinstance(outputs.get("metadata"), dict) else {}
        names = (outputs.get("bucket"), outputs.get("name"), metadata.get("name"))
        urn = entry["urn"]
        resources.append(
            Resource(
                urn=urn,
                type=entry["type"],
                name=urn.rsplit("::", 1)[-1],
                protect=bool(entry.get("protect")),
                physical=next((n for n in names if isinstance(n, str) and n), ""),
                dependencies=(
                    entry.get("parent", ""),
                    entry.get("provider", "").rsplit("::", 1)[0],
                    *(entry.get("dependencies") or ()),
                    entry.get("deletedWith", ""),
                ),
            )
        )
    return resources


def kept_by_quickstop(resources: list[Resource]) -> list[Resource]:
    """What `pulumi destroy --exclude-protected` keeps: the protected resources and all they depend on."""
    by_urn = {r.urn: r for r in resources}
    kept: set[str] = set()
    pending = [r.urn for r in resources if r.protect]
    while pending:
        urn = pending.pop()
        if urn in kept or urn not in by_urn:
            continue
        kept.add(urn)
        pending += by_urn[urn].dependencies
    return [r for r in resources if r.urn in kept]


def stopped(resources: list[Resource]) -> bool:
    """Only what a quickstop keeps is left (or nothing)."""
    real = [r for r in resources if r.managed]
    kept = {r.urn for r in kept_by_quickstop(resources)}
    return all(r.urn in kept for r in real)


def describe(resource: Resource) -> str:
    kind = resource.type.rsplit(":", 1)[-1]
    return f"{kind} {resource.physical or resource.name}"


def usd(amount: float) -> str:
    return f"${amount:.4f} an hour"


def secret_reader(lab: Lab, name: str) -> str:
    command = f"pulumi stack output {name} --show-secrets --stack {lab.stack}"
    if name == "kubeconfig":
        path = f"~/.kube/{lab.project.name}-{lab.stack}"
        return f"{command} > {path} && export KUBECONFIG={path}"
    return command


def flat(name: str, value: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flat(f"{name}.{key}", inner)
    else:
        yield name, value


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max((len(name) for name, _ in rows), default=0)
    say(*(f"  {name.ljust(width)}  {value}".rstrip() for name, value in rows))


def print_access(lab: Lab, outputs: dict[str, Any]) -> None:
    """The URLs and endpoints, how to read the credentials, and what to run next."""
    addresses = [
        row
        for name, value in outputs.items()
        if name.endswith(("Url", "Urls", "Endpoint")) and value != SECRET
        for row in flat(name, value)
    ]
    if addresses:
        say("URLs and endpoints:")
        print_table([(name, str(value)) for name, value in addresses])
    secrets = [name for name, value in outputs.items() if value == SECRET]
    if secrets:
        say("Credentials (not printed here; read them with):")
        rows = []
        for name in secrets:
            user = outputs.get(name.removesuffix("Password") + "User") if name.endswith("Password") else None
            rows.append((name, secret_reader(lab, name) + (f"   (user: {user})" if user else "")))
        print_table(rows)
    steps = next_steps(lab, outputs)
    if steps:
        say("Next:")
        print_table(steps)


def next_steps(lab: Lab, outputs: dict[str, Any]) -> list[tuple[str, str]]:
    steps = []
    if "gatewayPortForward" in outputs:
        steps.append(("gateway", f'eval "$(pulumi stack output gatewayPortForward --stack {lab.stack}) &"'))
    if "dnsRecord" in outputs:
        steps.append(("DNS record", f"create at your DNS provider: {outputs['dnsRecord']}"))
    if "dvcRemoteCommand" in outputs or "dvcRemoteCommands" in outputs:
        steps.append(("DVC", f"make dvc-remote STACK={lab.stack} DIR=<your DVC repository>"))
    return steps


def print_cost(lab: Lab, outputs: dict[str, Any], *, running: bool) -> None:
    now, after = outputs.get("estimatedHourlyCostUsd"), outputs.get("quickstopHourlyCostUsd")
    if now is None:
        say("Cost: no cloud cost (it runs on this machine).")
        return
    monthly = outputs.get("estimatedMonthlyCostUsd")
    if running:
        per_month = f" (${monthly:.2f} a month of 730 hours)" if isinstance(monthly, int | float) else ""
        say(f"Cost: about {usd(now)} now{per_month}; {usd(after or 0)} after make quickstop STACK={lab.stack}.")
    else:
        say(f"Cost: about {usd(after or 0)} now (stopped); {usd(now)} once make quickstart STACK={lab.stack} runs.")


# --- commands -------------------------------------------------------------------------------------------------


def quickstart(args: argparse.Namespace, project: Project) -> int:
    lab, checks, known = prepare(args.stack, doing="quickstart", project=project)
    if not known:
        return MISSING
    error = choose_phase(lab, args.phase)
    if error:
        say(error, "Nothing was changed.")
        return MISSING
    assert lab.phase is not None
    check_phase_order(checks, lab)
    machine = check_needs(checks, lab, sized=True)
    check_settings(checks, lab, machine)
    if not checks.passed(f"make quickstart STACK={lab.stack} PHASE={lab.phase.name}"):
        return MISSING
    say(f"Checked: {'; '.join(checks.found)}.")
    say(f"Stack {lab.stack}, phase {lab.phase.name}: {lab.phase.summary}.")
    if lab.exists:
        status = run("pulumi", "stack", "select", lab.stack)
    else:
        status = run("pulumi", "stack", "init", lab.stack)
        say("Keep PULUMI_CONFIG_PASSPHRASE: every later command on this stack needs the same one.")
    status = status or run(*on(lab.stack, "config", "set", project.key("phase"), lab.phase.name))
    if "aws" in lab.phase.needs:
        say("This creates AWS resources billed by the hour until make quickstop or make teardown.")
    status = status or run(*on(lab.stack, "up", "--yes"))
    if status:
        say(f"make quickstart stopped (exit status {status}): fix what Pulumi reports above and run it again.")
        return status
    outputs = stack_outputs(lab)
    say(f"Stack {lab.stack} is up at phase {lab.phase.name}.")
    print_access(lab, outputs)
    print_cost(lab, outputs, running=True)
    return 0


def status(args: argparse.Namespace, project: Project) -> int:
    lab, checks, known = prepare(args.stack, doing="status", project=project)
    if not known or not checks.passed(f"make status STACK={lab.stack}"):
        return MISSING
    if not lab.exists:
        say(f"Stack {lab.stack} does not exist yet: make quickstart STACK={lab.stack}")
        return 0
    choose_phase(lab, None)
    assert lab.phase is not None
    resources = state(lab)
    real = [r for r in resources if r.managed]
    running = bool(real) and not stopped(resources)
    situation = "up" if running else "stopped: a quickstop kept its data" if real else "nothing deployed"
    selected = " (selected)" if lab.selected else ""
    say(f"Stack {lab.stack}{selected}, phase {lab.phase.name}: {situation}.")
    if not real:
        return 0
    outputs = stack_outputs(lab)
    say("Outputs:")
    print_table([row for name, value in sorted(outputs.items()) for row in output_rows(lab, name, value)])
    print_cost(lab, outputs, running=running)
    return 0


def output_rows(lab: Lab, name: str, value: Any) -> list[tuple[str, str]]:
    """An output as table rows: a secret as [secret] with its reader, a map as one row per key."""
    if value == SECRET:
        return [(name, f"{SECRET}  {secret_reader(lab, name)}")]
    if isinstance(value, dict):
        return [(name, ""), *((f"  {key}", str(inner)) for key, inner in value.items())]
    return [(name, str(value))]


def prepare_existing(stack: str | None, project: Project, doing: str) -> Lab | int:
    """The checks of a command on a deployed stack: Pulumi, the stack, and what its phase needs."""
    lab, checks, known = prepare(stack, doing=doing, project=project)
    if not known:
        return MISSING
    choose_phase(lab, None)
    if not checks.missing:
        check_needs(checks, lab, sized=False)
    if not checks.passed(f"make {doing} STACK={lab.stack}"):
        return MISSING
    return lab


def quickstop(args: argparse.Namespace, project: Project) -> int:
    lab = prepare_existing(args.stack, project, "quickstop")
    if isinstance(lab, int):
        return lab
    if not lab.exists:
        say(f"Stack {lab.stack} does not exist: nothing to stop.")
        return 0
    before = state(lab)
    outputs = stack_outputs(lab)
    if stopped(before):
        say(f"Stack {lab.stack} is already stopped.")
    else:
        print_quickstop_plan(lab, outputs)
        status = run(*on(lab.stack, "destroy", "--exclude-protected", "--yes"))
        if status:
            say(f"The quickstop stopped (exit status {status}): run make quickstop STACK={lab.stack} again.")
            return status
    kept = [r for r in kept_by_quickstop(state(lab)) if r.managed]
    say(f"Kept in the stack ({len(kept)}):" if kept else "Kept in the stack: nothing.")
    say(*(f"  {describe(r)}" for r in kept))
    if "quickstopHourlyCostUsd" in outputs:
        cost = usd(outputs["quickstopHourlyCostUsd"])
        say(f"What stays costs {cost}, as listed above. make quickstart STACK={lab.stack} brings the rest back.")
    else:
        say(f"No cloud cost. make quickstart STACK={lab.stack} brings the rest back.")
    return 0


def print_quickstop_plan(lab: Lab, outputs: dict[str, Any]) -> None:
    assert lab.phase is not None
    say(f"Quickstop of stack {lab.stack} (phase {lab.phase.name}): everything goes but the protected data.")
    breakdown = outputs.get("quickstopCostBreakdown")
    if isinstance(breakdown, dict):
        say("What stays is billed:")
        print_table([(item, f"${hourly:.4f}/h") for item, hourly in breakdown.items()])


# --- teardown -------------------------------------------------------------------------------------------------


def teardown(args: argparse.Namespace, project: Project) -> int:
    stack = args.stack or default_stack(None, listed_stacks()[1] if shutil.which("pulumi") else None)
    if args.confirm != stack:
        say(
            f"make teardown deletes everything of stack {stack}, its data included, and refuses without confirmation.",
            f"It runs: pulumi config set {project.key('retainData')} false --stack {stack}; "
            f"pulumi up --yes --stack {stack}; pulumi destroy --yes --stack {stack}",
            "then lists what outlives Pulumi (retained volumes, final snapshots, buckets, log groups).",
            f"To go ahead: make teardown STACK={stack} CONFIRM={stack}  (add DELETE_LEFTOVERS=1 to delete those too)",
            f"To stop paying by the hour and keep the data instead: make quickstop STACK={stack}",
        )
        return MISSING
    lab = prepare_existing(stack, project, "teardown")
    if isinstance(lab, int):
        return lab
    assert lab.phase is not None
    leftovers = (DevLeftovers if "aws" in lab.phase.needs else LocalLeftovers)(lab, args.delete_leftovers)
    if lab.exists:
        status = leftovers.before_destroy() or destroy_everything(lab, leftovers)
        if status:
            return status
    else:
        say(f"Stack {lab.stack} does not exist in the backend: nothing for Pulumi to destroy.")
    return leftovers.after_destroy()


def destroy_everything(lab: Lab, leftovers: Leftovers) -> int:
    resources = state(lab)
    if not any(r.managed for r in resources):
        say(f"Stack {lab.stack} holds nothing: no pulumi destroy needed.")
        return 0
    if stopped(resources):
        say("The stack is stopped: the up below brings back what the quickstop removed, then destroy removes all.")
    leftovers.remember(resources)
    status = run(*on(lab.stack, "config", "set", lab.project.key("retainData"), "false"))
    status = status or run(*on(lab.stack, "up", "--yes"))
    status = status or leftovers.empty_buckets()
    status = status or run(*on(lab.stack, "destroy", "--yes"))
    if status:
        say(
            f"The teardown stopped (exit status {status}). If destroy stopped on the VPC with DependencyViolation, "
            f"the load balancer was still going: make teardown STACK={lab.stack} CONFIRM={lab.stack} a minute later."
        )
    return status


@dataclass(frozen=True)
class Leftover:
    what: str
    command: tuple[str, ...]
    """What deletes it."""
    first: Callable[[], int] | None = None
    """What has to happen before that command."""


class Leftovers:
    """What outlives `pulumi destroy`: listed, or deleted when asked."""

    def __init__(self, lab: Lab, delete: bool):
        self.lab = lab
        self.delete = delete

    def before_destroy(self) -> int:
        return 0

    def remember(self, resources: list[Resource]) -> None:
        """What the state says before it goes, to tell this stack's leftovers from others'."""

    def empty_buckets(self) -> int:
        return 0

    def find(self) -> list[Leftover]:
        raise NotImplementedError

    def after_destroy(self) -> int:
        found = self.find()
        if not found:
            say(f"Nothing of stack {self.lab.stack} outlives Pulumi.")
            return 0
        if not self.delete:
            say(f"Outliving Pulumi ({len(found)}), with what deletes each:")
            say(*(f"  {leftover.what}: {shlex.join(leftover.command)}" for leftover in found))
            say(f"Delete them all: make teardown STACK={self.lab.stack} CONFIRM={self.lab.stack} DELETE_LEFTOVERS=1")
            return 0
        say(f"Deleting what outlives Pulumi ({len(found)}):")
        status = 0
        for leftover in found:
            status = (leftover.first() if leftover.first else 0) or run(*leftover.command) or status
        return status


class LocalLeftovers(Leftovers):
    @property
    def label(self) -> str:
        """The label every Docker volume of the lab carries (components/runtime/docker_service.py)."""
        return f"label={self.lab.project.name}.service"

    def find(self) -> list[Leftover]:
        docker = docker_command(self.lab)
        volumes = read(*docker, "volume", "ls", "-q", "--filter", self.label).out.split()
        return [Leftover(f"Docker volume {volume}", (*docker, "volume", "rm", volume)) for volume in volumes]


class DevLeftovers(Leftovers):
    def __init__(self, lab: Lab, delete: bool):
        super().__init__(lab, delete)
        self.prefix = f"{lab.project.name}-{lab.stack}"
        self.final_snapshots = f"{self.prefix}-mlflow-final-"
        """MLflow's database in phase production (stacks/production.py) and its final snapshots' names."""
        self.log_group = f"/aws/eks/{self.prefix}/cluster"
        """The control plane's log group, which EKS names after the cluster."""
        self.full_buckets: list[str] = []
        self.namespaces: set[str] = set()

    def aws(self, *args: str) -> tuple[str, ...]:
        region = ("--region", self.lab.region) if self.lab.region else ()
        return ("aws", *args, *region, "--output", "json")

    def buckets(self) -> list[str]:
        listed = read(*self.aws("s3api", "list-buckets")).json() or {}
        return [b["Name"] for b in listed.get("Buckets") or [] if b["Name"].startswith(f"{self.prefix}-")]

    def versions(self, bucket: str, count: int) -> list[dict[str, str]]:
        listed = read(*self.aws("s3api", "list-object-versions", "--bucket", bucket, "--max-items", str(count)))
        found = listed.json() or {}
        entries = [*(found.get("Versions") or []), *(found.get("DeleteMarkers") or [])]
        return [{"Key": e["Key"], "VersionId": e["VersionId"]} for e in entries]

    def before_destroy(self) -> int:
        """Pulumi never deletes a bucket with objects in it: empty them (when asked) or stop here."""
        self.full_buckets = [bucket for bucket in self.buckets() if self.versions(bucket, 1)]
        if not self.full_buckets or self.delete:
            return 0
        say(
            "These buckets hold data, and pulumi destroy stops at a bucket that is not empty:",
            *(f"  s3://{bucket}" for bucket in self.full_buckets),
            "Nothing was changed. Copy what you need, then delete every version of every object in them: "
            f"make teardown STACK={self.lab.stack} CONFIRM={self.lab.stack} DELETE_LEFTOVERS=1 does it "
            "(or Empty each bucket in the S3 console).",
        )
        return MISSING

    def remember(self, resources: list[Resource]) -> None:
        self.namespaces = {r.physical for r in resources if r.type == "kubernetes:core/v1:Namespace" and r.physical}

    def empty_buckets(self) -> int:
        return max((self.empty(bucket) for bucket in self.full_buckets), default=0)

    def empty(self, bucket: str) -> int:
        """Deletes every version of every object (and every delete marker) in a bucket."""
        previous: list[dict[str, str]] = []
        while batch := self.versions(bucket, 500):
            if batch == previous:
                say(f"s3://{bucket} keeps the same objects after deleting them: see the errors above.")
                return 1
            previous = batch
            document = json.dumps({"Objects": batch, "Quiet": True})
            command = self.aws("s3api", "delete-objects", "--bucket", bucket, "--delete", document)
            status = run(*command, shown=shlex.join(command).replace(shlex.quote(document), f"<{len(batch)} versions>"))
            if status:
                return status
        return 0

    def find(self) -> list[Leftover]:
        found = self.volumes()
        snapshots = read(*self.aws("rds", "describe-db-snapshots", "--snapshot-type", "manual")).json() or {}
        for snapshot in snapshots.get("DBSnapshots") or []:
            name = snapshot["DBSnapshotIdentifier"]
            if name.startswith(self.final_snapshots):
                command = self.aws("rds", "delete-db-snapshot", "--db-snapshot-identifier", name)
                found.append(Leftover(f"MLflow's final database snapshot {name}", command))
        for bucket in self.buckets():
            command = self.aws("s3api", "delete-bucket", "--bucket", bucket)
            found.append(Leftover(f"bucket s3://{bucket}, emptied first", command, lambda b=bucket: self.empty(b)))
        log_group = self.log_group
        groups = read(*self.aws("logs", "describe-log-groups", "--log-group-name-prefix", log_group)).json() or {}
        if any(g.get("logGroupName") == log_group for g in groups.get("logGroups") or []):
            command = self.aws("logs", "delete-log-group", "--log-group-name", log_group)
            found.append(Leftover(f"the control plane's log group {log_group}", command))
        else:
            say(f"EKS may re-create {log_group} minutes after the cluster goes: run this teardown again then.")
        return found

    def volumes(self) -> list[Leftover]:
        """Claims' volumes a Retain StorageClass kept, of this stack's namespaces."""
        filters = ("--filters", f"Name=tag-key,Values={PVC_TAG}", "Name=status,Values=available")
        listed = read(*self.aws("ec2", "describe-volumes", *filters)).json() or {}
        found = []
        for volume in listed.get("Volumes") or []:
            tags = {t["Key"]: t["Value"] for t in volume.get("Tags") or []}
            claim = f"{tags.get(PVC_NAMESPACE_TAG, '?')}/{tags.get(PVC_TAG, '?')}"
            if tags.get(PVC_NAMESPACE_TAG) in self.namespaces:
                command = self.aws("ec2", "delete-volume", "--volume-id", volume["VolumeId"])
                found.append(Leftover(f"EBS volume {volume['VolumeId']} of claim {claim}", command))
            else:
                say(f"Unattached EBS volume {volume['VolumeId']} of claim {claim}: not known to be this stack's.")
        return found


# --- DVC ------------------------------------------------------------------------------------------------------


def dvc_repository(checks: Checks, directory: Path) -> None:
    if checks.need(bool(shutil.which("dvc")), "DVC", "pipx install 'dvc[s3]'"):
        checks.need(
            (directory / ".dvc").is_dir(),
            f"a DVC repository in {directory}",
            f"cd {shlex.quote(str(directory))} && git init && dvc init",
        )


def dvc_remote(args: argparse.Namespace, project: Project) -> int:
    lab, checks, known = prepare(args.stack, doing="dvc-remote", project=project)
    if not known:
        return MISSING
    directory = Path(args.dir).resolve()
    dvc_repository(checks, directory)
    if not checks.passed(f"make dvc-remote STACK={lab.stack}"):
        return MISSING
    outputs = stack_outputs(lab) if lab.exists else {}
    commands = outputs.get("dvcRemoteCommand") or outputs.get("dvcRemoteCommands")
    if not commands:
        choose_phase(lab, None)
        assert lab.phase is not None
        phases = ", ".join(p.name for p in phases_for(lab.stack))
        say(
            f"Stack {lab.stack} has no DVC remote in phase {lab.phase.name} (no output dvcRemoteCommand or "
            f"dvcRemoteCommands; a later phase brings an artifact store: {phases}). Nothing was changed."
        )
        return MISSING
    # The commands may read a secret with `pulumi stack output`: of this project and stack, not the DVC repository's.
    wrapper = 'pulumi() { command pulumi "$@" --stack "$LAB_STACK" --cwd "$LAB_ROOT"; }; eval "$LAB_COMMANDS"'
    env = {**os.environ, "LAB_STACK": lab.stack, "LAB_ROOT": str(ROOT), "LAB_COMMANDS": commands}
    status = run(
        "/bin/sh", "-c", wrapper, cwd=directory, env=env, shown=f"(cd {shlex.quote(str(directory))} && {commands})"
    )
    if status:
        return status
    say(f"DVC in {directory} pushes to the stack's remote `lab`: make dvc-push DIR={shlex.quote(args.dir)}")
    if "gatewayPortForward" in outputs:
        say(f'It goes through the gateway: eval "$(pulumi stack output gatewayPortForward --stack {lab.stack}) &"')
    return 0


def dvc_push(args: argparse.Namespace, _project: Project) -> int:
    checks = Checks()
    directory = Path(args.dir).resolve()
    dvc_repository(checks, directory)
    if not checks.passed("make dvc-push"):
        return MISSING
    return run("dvc", "push", cwd=directory)


# --- entry point ----------------------------------------------------------------------------------------------

COMMANDS = {
    "quickstart": quickstart,
    "status": status,
    "quickstop": quickstop,
    "teardown": teardown,
    "dvc-remote": dvc_remote,
    "dvc-push": dvc_push,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/lab.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--stack", help="default: the selected stack, else local")
    parser.add_argument("--phase", help="quickstart: default the stack's configured phase, else its first")
    parser.add_argument("--confirm", help="teardown: the stack's name")
    parser.add_argument("--delete-leftovers", action="store_true", help="teardown: delete what outlives Pulumi")
    parser.add_argument("--dir", default=".", help="dvc-remote, dvc-push: the DVC repository")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    return COMMANDS[args.command](args, Project.load())


if __name__ == "__main__":
    sys.exit(main())
