"""The lifecycle targets (Makefile -> scripts/lab.py), run against stand-ins for pulumi, docker, minikube, aws, dvc.

Each stand-in is a small shell script that logs its arguments and answers as told: the first answer whose
arguments start the call (and whose `after` call was made before) gives its stdout, stderr and exit status; any
other call succeeds silently. `PATH` holds the stand-ins alone, so no real CLI on this machine ever answers.
The README's session, teardown's refusal and a clone without .venv run through `make` as a person runs them;
the other cases call the CLI in this process (faster), against the same stand-ins. The tests assert the exact
calls, what is printed when a prerequisite is missing (with nothing changed), that teardown refuses without
confirmation, and that no secret value is printed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from components.runtime.docker_service import LABEL_PREFIX
from stacks.catalog import MINIKUBE, PHASES
from tests.harness import PROJECT, REPO, failed_stack, stack_config

MAKE = shutil.which("make")
TOOLS = ("pulumi", "docker", "minikube", "aws", "dvc")
STANDIN = r"""#!/bin/sh
# Logs the call (each argument ended by <US>), then answers as the first entry that matches says.
# PATH holds the stand-ins alone: the shell's builtins do the work.
call="${0##*/}<US>"
for argument in "$@"; do call="$call$argument<US>"; done
show() { while IFS= read -r line || [ -n "$line" ]; do printf '%s\n' "$line"; done < "$1"; }
for entry in "$LAB_STANDIN_ANSWERS"/*; do
  [ -d "$entry" ] || continue
  IFS= read -r prefix < "$entry/argv" || true
  case "$call" in "$prefix"*) ;; *) continue ;; esac
  if [ -f "$entry/after" ]; then
    IFS= read -r after < "$entry/after" || true
    made=no
    while IFS= read -r line; do case "$line" in "$after"*) made=yes; break ;; esac; done < "$LAB_STANDIN_LOG"
    [ "$made" = yes ] || continue
  fi
  printf '%s\n' "$call" >> "$LAB_STANDIN_LOG"
  show "$entry/stdout"
  show "$entry/stderr" >&2
  IFS= read -r status < "$entry/status" || true
  exit "$status"
done
printf '%s\n' "$call" >> "$LAB_STANDIN_LOG"
""".replace("<US>", "\037")
SEPARATOR = "\037"
PASSPHRASE = "correct-horse-battery"
SECRETS = {"grafanaAdminPassword": "s3cr3t-grafana", "minioPassword": "s3cr3t-minio", "kubeconfig": "s3cr3t-token"}
"""What the stand-in pulumi answers when asked for a secret output with --show-secrets: none may be printed."""
DEV_IDENTITY = {"Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/learner", "UserId": "AIDAEXAMPLE"}
WHOAMI = {"user": "learner", "url": "file://~"}

pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make runs the targets")


def load_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lab", REPO / "scripts" / "lab.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


lab = load_cli()


def pulumi(*args: str) -> list[str]:
    return ["pulumi", *args]


@dataclass
class Bench:
    """A directory of stand-ins, their answers and the log of their calls."""

    root: Path
    env: dict[str, str]
    capfd: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    answers: int = 0

    def answer(self, argv: Sequence[str], stdout: Any = "", *, status: int = 0, stderr: str = "", after=()) -> None:
        """The answer to calls starting with `argv`, made after a call starting with `after` if given."""
        self.answers += 1
        entry = self.root / "answers" / f"{self.answers:04}"
        entry.mkdir(parents=True)
        (entry / "argv").write_text("".join(f"{arg}{SEPARATOR}" for arg in argv))
        (entry / "stdout").write_text(stdout if isinstance(stdout, str) else json.dumps(stdout))
        (entry / "stderr").write_text(stderr)
        (entry / "status").write_text(str(status))
        if after:
            (entry / "after").write_text("".join(f"{arg}{SEPARATOR}" for arg in after))

    def unset(self, name: str) -> None:
        self.monkeypatch.delenv(name)
        del self.env[name]

    def calls(self) -> list[list[str]]:
        log = Path(self.env["LAB_STANDIN_LOG"])
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split(SEPARATOR)[:-1] for line in lines]

    def make(self, target: str, *variables: str, repo: Path = REPO) -> subprocess.CompletedProcess[str]:
        """A target as a person runs it."""
        command = [MAKE, "--no-print-directory", "-C", str(repo), target, *variables]
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, check=False, timeout=60)
        assert not any(secret in done.stdout + done.stderr for secret in SECRETS.values()), done.stdout
        return done

    def lab(self, *argv: str) -> tuple[int, str]:
        """The CLI the targets call, in this process (with the same stand-ins): its exit status and output."""
        self.capfd.readouterr()
        status = lab.main(list(argv))
        out, err = self.capfd.readouterr()
        assert not any(secret in out + err for secret in SECRETS.values()), out
        return status, out


@pytest.fixture
def bench(tmp_path, monkeypatch, capfd) -> Bench:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).write_text(STANDIN)
        (bin_dir / tool).chmod(0o755)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "LAB_STANDIN_LOG": str(tmp_path / "calls.log"),
        "LAB_STANDIN_ANSWERS": str(tmp_path / "answers"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "calls.log").touch()
    bench = Bench(tmp_path, env, capfd, monkeypatch)
    bench.answer(pulumi("whoami", "--json"), WHOAMI)
    for name, secret in SECRETS.items():
        bench.answer(pulumi("stack", "output", name, "--show-secrets"), secret)
    return bench


def config_json(stack: str, **overrides: str) -> dict[str, dict[str, Any]]:
    """`pulumi config --json` of a stack whose operator set what the README says, and `overrides`."""
    return {key: {"value": value, "secret": False} for key, value in stack_config(stack, overrides).items()}


def stacks_json(*names: str, current: str) -> list[dict[str, Any]]:
    return [{"name": name, "current": name == current, "updateInProgress": False} for name in names]


def state(stack: str, *resources: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """`pulumi stack export` of a stack holding `resources`: (type, name, fields) each, its parent named in fields."""
    prefix = f"urn:pulumi:{stack}::{PROJECT}::"
    root = {"urn": f"{prefix}pulumi:pulumi:Stack::{PROJECT}-{stack}", "type": "pulumi:pulumi:Stack"}
    entries = [root]
    for type_, name, fields in resources:
        parent = fields.get("parent")
        parent_urn = next((e["urn"] for e in entries if e["urn"].endswith(f"::{parent}")), root["urn"])
        entry = {key: value for key, value in fields.items() if key != "parent"}
        entries.append({"urn": f"{prefix}{type_}::{name}", "type": type_, "parent": parent_urn, **entry})
    return {"version": 3, "deployment": {"resources": entries}}


LOCAL_OUTPUTS = {
    "grafanaUrl": "http://localhost:3000",
    "grafanaAdminUser": "admin",
    "grafanaAdminPassword": "[secret]",
    "otlpGrpcEndpoint": "http://localhost:4317",
    "otlpHttpEndpoint": "http://localhost:4318",
}
"""Phase observability's outputs as `pulumi stack output --json` shows them (tests/test_quickstop.py checks)."""
KUBERNETES_OUTPUTS = {
    **LOCAL_OUTPUTS,
    "minioPassword": "[secret]",
    "gatewayPortForward": "kubectl --context minikube -n gateway-system port-forward service/traefik 8080:80",
    "dvcRemoteCommands": "dvc remote add -d lab s3://lab-artifacts/dvc && "
    "dvc remote modify lab endpointurl http://minio.localhost:8080 && "
    "dvc remote modify --local lab access_key_id lab-admin && "
    'dvc remote modify --local lab secret_access_key "$(pulumi stack output minioPassword --show-secrets)"',
}
"""Some of phase kubernetes' outputs (tests/test_quickstop.py checks)."""
DEV_OUTPUTS = {
    "kubeconfig": "[secret]",
    "clusterName": "llm-infra-lab-dev",
    "artifactBucket": "llm-infra-lab-dev-artifacts-123456789012-us-east-1",
    "mlflowUrl": "(pending: kubectl -n gateway-system get service traefik)",
    "mlflowUsername": "admin",
    "mlflowPassword": "[secret]",
    "dvcRemoteCommand": "dvc remote add -d lab s3://llm-infra-lab-dev-artifacts-123456789012-us-east-1/dvc",
    "estimatedHourlyCostUsd": 0.1563,
    "estimatedMonthlyCostUsd": 114.12,
    "costBreakdown": {
        "EKS control plane": 0.1,
        "EC2 t3.medium spot": 0.015,
        "EBS gp3 GiB (t3.medium node disks)": 0.0022,
        "Network Load Balancer (LCU excluded)": 0.0225,
        "Public IPv4 address": 0.015,
        "EBS gp3 GiB (claims)": 0.0001,
        "S3 Standard GB": 0.0002,
        "KMS customer managed key": 0.0014,
    },
    "costNotIncluded": {
        "EKS control-plane logs (CloudWatch ingestion)": "about $0.0104 an hour, assuming 0.5 GB a day at $0.50 per GB",
        "T3 surplus CPU credits": "none: the nodes run in standard credit mode and slow down instead",
        "traffic": "data transfer, load balancer capacity units, NAT data processing, S3 and KMS requests",
    },
    "quickstopHourlyCostUsd": 0.0003,
    "quickstopCostBreakdown": {"EBS gp3 GiB (claims)": 0.0001, "S3 Standard GB": 0.0002},
}
"""Phase platform's outputs under mocks, as `pulumi stack output --json` shows them (tests/test_quickstop.py checks)."""


def local_state(*, quickstopped: bool = False) -> dict[str, Any]:
    """A local stack in phase observability, in short: a network, Grafana, its volume and its password."""
    volume = {"protect": True, "outputs": {"name": f"{PROJECT}-local-grafana-data"}}
    kept = [
        ("pulumi:providers:docker", "docker", {}),
        ("docker:index/volume:Volume", "grafana-data", volume),
        ("random:index/randomPassword:RandomPassword", "grafana-admin-password", {"protect": True}),
    ]
    running = [
        ("docker:index/network:Network", "lab", {"outputs": {"name": f"{PROJECT}-local"}}),
        ("docker:index/container:Container", "grafana", {"outputs": {"name": f"{PROJECT}-local-grafana"}}),
    ]
    return state("local", *kept, *([] if quickstopped else running))


def dev_state(*, quickstopped: bool = False) -> dict[str, Any]:
    """A dev stack in phase platform, in short: what a quickstop keeps of it is the program's (test_quickstop.py)."""
    bucket = {"protect": True, "parent": "artifacts", "outputs": {"bucket": DEV_OUTPUTS["artifactBucket"]}}
    log_group = {"protect": True, "parent": "eks", "outputs": {"name": f"/aws/eks/{PROJECT}-dev/cluster"}}
    kept = [
        ("pulumi:providers:aws", "aws", {}),
        ("llm-infra-lab:aws:EksCluster", "eks", {}),
        ("aws:cloudwatch/logGroup:LogGroup", "eks-control-plane-logs", log_group),
        ("llm-infra-lab:aws:ArtifactBucket", "artifacts", {}),
        ("aws:s3/bucket:Bucket", "artifacts-bucket", bucket),
    ]
    running = [
        ("aws:ec2/vpc:Vpc", "network-vpc", {}),
        ("aws:eks/cluster:Cluster", "eks-cluster", {"parent": "eks", "outputs": {"name": f"{PROJECT}-dev"}}),
        ("aws:eks/nodeGroup:NodeGroup", "eks-nodes", {"parent": "eks"}),
        ("kubernetes:core/v1:Namespace", "mlops-system", {"outputs": {"metadata": {"name": "mlops-system"}}}),
    ]
    return state("dev", *kept, *([] if quickstopped else running))


# --- the README's session -------------------------------------------------------------------------------------

UP = "Updating (dev):\n…\nResources:\n    + 65 created\n\nDuration: 14m31s\n"
DESTROY = "Destroying (dev):\n…\nResources:\n    - 59 deleted\n    6 unchanged\n\nDuration: 9m2s\n"
"""What the stand-in pulumi prints of an up and a destroy, abbreviated."""
SESSION = (("quickstart", "STACK=dev", "PHASE=platform"), ("status",), ("quickstop",))


def dev_session(bench: Bench) -> None:
    """A dev stack created and configured as the README says, with local selected."""
    select = pulumi("stack", "select")
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", "dev", current="dev"), after=select)
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", "dev", current="local"))
    bench.answer(pulumi("config", "--json", "--stack", "dev"), config_json("dev", clusterAdminArn=DEV_IDENTITY["Arn"]))
    bench.answer(["aws", "sts", "get-caller-identity"], DEV_IDENTITY)
    bench.answer(pulumi("up"), UP)
    bench.answer(pulumi("destroy"), DESTROY)
    bench.answer(pulumi("stack", "output", "--json"), DEV_OUTPUTS)
    bench.answer(pulumi("stack", "export"), dev_state(quickstopped=True), after=pulumi("destroy"))
    bench.answer(pulumi("stack", "export"), dev_state())


def test_quickstart_status_and_quickstop_of_dev_run_these_commands_and_the_readme_shows_them(bench):
    dev_session(bench)
    transcript = ""
    for target, *variables in SESSION:
        done = bench.make(target, *variables)
        assert done.returncode == 0, done.stdout + done.stderr
        transcript += " ".join(("$ make", target, *variables)) + "\n" + done.stdout
    reads = [pulumi("whoami", "--json"), pulumi("stack", "ls", "--json"), pulumi("config", "--json", "--stack", "dev")]
    identity = ["aws", "sts", "get-caller-identity", "--output", "json"]
    assert bench.calls() == [
        *reads,
        identity,
        pulumi("stack", "select", "dev"),
        pulumi("config", "set", "llm-infra-lab:phase", "platform", "--stack", "dev"),
        pulumi("up", "--yes", "--stack", "dev"),
        pulumi("stack", "output", "--json", "--stack", "dev"),
        # status
        *reads,
        pulumi("stack", "export", "--stack", "dev"),
        pulumi("stack", "output", "--json", "--stack", "dev"),
        # quickstop
        *reads,
        identity,
        pulumi("stack", "export", "--stack", "dev"),
        pulumi("stack", "output", "--json", "--stack", "dev"),
        pulumi("destroy", "--exclude-protected", "--yes", "--stack", "dev"),
        pulumi("stack", "export", "--stack", "dev"),
    ]
    readme = (REPO / "README.md").read_text()
    assert f"```console\n{transcript}```" in readme, transcript


# --- prerequisites --------------------------------------------------------------------------------------------

READS = (
    pulumi("whoami"),
    pulumi("stack", "ls"),
    pulumi("config", "--json"),
    pulumi("stack", "output", "--json"),
    pulumi("stack", "export"),
    ["docker", "info"],
    ["minikube", "status"],
    ["minikube", "profile", "list"],
    ["aws", "sts", "get-caller-identity"],
)


def changes(calls: list[list[str]]) -> list[list[str]]:
    """The calls but the reads the checks and reports make."""
    return [call for call in calls if not any(call[: len(read)] == read for read in READS)]


def test_a_fresh_dev_quickstart_says_everything_missing_at_once_and_changes_nothing(bench):
    (bench.root / "bin" / "aws").unlink()
    bench.unset("PULUMI_CONFIG_PASSPHRASE")
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    status, out = bench.lab("quickstart", "--stack", "dev")
    assert status == 2
    assert out == (
        "Missing before make quickstart STACK=dev PHASE=platform:\n"
        "  - PULUMI_CONFIG_PASSPHRASE, which encrypts the stacks' secrets in file://~. "
        "Fix: export PULUMI_CONFIG_PASSPHRASE='<your passphrase>'  (the one the stack was created with, if it exists)\n"
        "  - the AWS CLI. Fix: install it: https://aws.amazon.com/cli/\n"
        "  - the stack dev, to hold the settings below. Fix: pulumi stack init dev\n"
        "  - the setting apiAllowedCidrs, required in phase platform. Fix: pulumi config set "
        'llm-infra-lab:apiAllowedCidrs "$(curl -s https://checkip.amazonaws.com)/32" --stack dev\n'
        "  - the setting clusterAdminArn, required in phase platform. Fix: pulumi config set "
        'llm-infra-lab:clusterAdminArn "$(aws sts get-caller-identity --query Arn --output text)" --stack dev\n'
        "Nothing was changed.\n"
    )
    assert changes(bench.calls()) == []


def test_production_also_needs_docker_a_domain_and_a_contact_and_the_role_behind_a_session(bench):
    session = "arn:aws:sts::123456789012:assumed-role/lab-admin/alice"
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("dev", current="dev"))
    bench.answer(pulumi("config", "--json"), config_json("dev", clusterAdminArn="", domain="", acmeEmail=""))
    bench.answer(["aws", "sts"], {**DEV_IDENTITY, "Arn": session})
    down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
    bench.answer(["docker", "info"], status=1, stderr=down)
    status, out = bench.lab("quickstart", "--phase", "production")
    assert status == 2
    assert out.splitlines()[1:-1] == [
        f"  - a running Docker engine (docker info: {down}). "
        "Fix: start Docker Desktop or colima, or: sudo systemctl start docker",
        "  - the setting clusterAdminArn, required in phase production. Fix: pulumi config set "
        "llm-infra-lab:clusterAdminArn arn:aws:iam::123456789012:role/lab-admin --stack dev"
        "  (a role with a path: aws iam get-role --role-name <role> --query Role.Arn --output text)",
        "  - the setting domain, required in phase production. Fix: pulumi config set "
        "llm-infra-lab:domain <a DNS name you control> --stack dev",
        "  - the setting acmeEmail, required in phase production. Fix: pulumi config set "
        "llm-infra-lab:acmeEmail <a mailbox you read, not at example.com> --stack dev",
    ]
    assert changes(bench.calls()) == []


def minikube_profile(memory: int, cpus: int, cni: str) -> dict[str, Any]:
    config = {"Memory": memory, "CPUs": cpus, "KubernetesConfig": {"CNI": cni}}
    return {"Name": "minikube", "Status": "Running", "Config": config}


@pytest.mark.parametrize(
    ("profile", "running", "missing"),
    [
        (None, True, f"the minikube profile minikube. Fix: {MINIKUBE.start_command('minikube')}"),
        (
            minikube_profile(5120, 4, "calico"),
            False,
            "minikube profile minikube running. Fix: minikube start -p minikube",
        ),
        (
            minikube_profile(4000, 2, ""),
            True,
            f"minikube profile minikube with {MINIKUBE.memory_mib} MiB, {MINIKUBE.cpus} CPUs and the calico CNI "
            "(it has 4000 MiB, 2 CPUs, CNI none). "
            f"Fix: minikube delete -p minikube && {MINIKUBE.start_command('minikube')}"
            "  (deletes what the cluster holds)",
        ),
    ],
    ids=["no-profile", "stopped", "too-small"],
)
def test_phase_kubernetes_needs_minikube_running_at_the_documented_size(bench, profile, running, missing):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local", phase="agents", bindAddress="192.168.49.1"))
    bench.answer(["minikube", "profile", "list", "-o", "json"], {"invalid": [], "valid": [profile] if profile else []})
    bench.answer(["minikube", "status"], status=0 if running else 7)
    status, out = bench.lab("quickstart", "--phase", "kubernetes")
    assert status == 2
    assert out.splitlines()[1:-1] == [f"  - {missing}"]
    assert changes(bench.calls()) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Docker Desktop needs no bind address")
def test_on_linux_phase_kubernetes_needs_grafana_and_otlp_on_minikubes_network(bench):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local", phase="agents"))
    bench.answer(["docker", "info"], "Ubuntu 24.04 LTS\n")
    bench.answer(["minikube", "profile", "list", "-o", "json"], {"valid": [minikube_profile(8192, 4, "calico")]})
    status, out = bench.lab("quickstart", "--phase", "kubernetes")
    assert out.splitlines()[1:-1] == [
        "  - bindAddress on minikube's network (it is 127.0.0.1: on Linux pods could not reach Grafana and OTLP). "
        "Fix: pulumi config set llm-infra-lab:bindAddress "
        "\"$(docker network inspect minikube -f '{{(index .IPAM.Config 0).Gateway}}')\" --stack local"
    ]
    assert changes(bench.calls()) == []


def test_a_phase_the_stack_does_not_have_or_going_back_is_refused(bench):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("dev", current="dev"))
    bench.answer(pulumi("config", "--json"), config_json("dev", phase="production"))
    status, out = bench.lab("quickstart", "--phase", "agents")
    assert status == 2
    assert out == "phase 'agents' is not a phase of stack dev; its phases: platform, production\nNothing was changed.\n"
    status, out = bench.lab("quickstart", "--phase", "platform")
    assert "  - stack dev is at phase production, after platform: phases go forward (README). " in out
    assert changes(bench.calls()) == []


def test_without_a_virtualenv_the_fix_is_the_install_script(bench, tmp_path):
    """A fresh clone: make runs the CLI with python3, which says to install first."""
    clone = tmp_path / "clone"
    for path in (
        "Makefile",
        "Pulumi.yaml",
        "Pulumi.local.yaml",
        "scripts/lab.py",
        "stacks/__init__.py",
        "stacks/catalog.py",
    ):
        (clone / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / path, clone / path)
    (bench.root / "bin" / "python3").symlink_to(sys.executable)
    (bench.root / "bin" / "pulumi").unlink()
    done = bench.make("quickstart", repo=clone)
    assert done.returncode == 2
    assert done.stdout.splitlines()[1:3] == [
        "  - the Python virtualenv .venv that Pulumi runs the program from. Fix: bash scripts/install",
        "  - the Pulumi CLI. Fix: curl -fsSL https://get.pulumi.com | sh",
    ]


# --- the local stack ------------------------------------------------------------------------------------------


def test_a_first_local_quickstart_creates_the_stack_and_says_how_to_read_grafanas_password(bench):
    bench.answer(pulumi("stack", "ls", "--json"), [])
    bench.answer(pulumi("stack", "output", "--json"), LOCAL_OUTPUTS)
    status, out = bench.lab("quickstart")
    assert status == 0, out
    assert bench.calls() == [
        pulumi("whoami", "--json"),
        pulumi("stack", "ls", "--json"),
        ["docker", "info", "--format", "{{.OperatingSystem}}"],
        pulumi("stack", "init", "local"),
        pulumi("config", "set", "llm-infra-lab:phase", "observability", "--stack", "local"),
        pulumi("up", "--yes", "--stack", "local"),
        pulumi("stack", "output", "--json", "--stack", "local"),
    ]
    assert "  grafanaUrl        http://localhost:3000\n" in out
    reader = "pulumi stack output grafanaAdminPassword --show-secrets --stack local   (user: admin)"
    assert f"  grafanaAdminPassword  {reader}\n" in out
    assert out.endswith("Cost: no cloud cost (it runs on this machine).\n")


def test_status_shows_secret_outputs_as_secret_with_the_command_that_reads_them(bench):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local"))
    bench.answer(pulumi("stack", "export"), local_state())
    bench.answer(pulumi("stack", "output", "--json"), LOCAL_OUTPUTS)
    status, out = bench.lab("status")
    assert out.startswith("Stack local (selected), phase observability: up.\nOutputs:\n")
    reader = "pulumi stack output grafanaAdminPassword --show-secrets --stack local"
    assert f"  grafanaAdminPassword  [secret]  {reader}\n" in out


def test_a_local_quickstop_keeps_the_volumes_and_credentials(bench):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local"))
    bench.answer(pulumi("stack", "export"), local_state(quickstopped=True), after=pulumi("destroy"))
    bench.answer(pulumi("stack", "export"), local_state())
    bench.answer(pulumi("stack", "output", "--json"), LOCAL_OUTPUTS)
    status, out = bench.lab("quickstop")
    assert status == 0
    assert changes(bench.calls()) == [pulumi("destroy", "--exclude-protected", "--yes", "--stack", "local")]
    assert out.endswith(
        "Kept in the stack (2):\n  Volume llm-infra-lab-local-grafana-data\n  RandomPassword grafana-admin-password\n"
        "No cloud cost. make quickstart STACK=local brings the rest back.\n"
    )


def test_teardown_refuses_without_confirmation_and_runs_nothing(bench):
    refused = bench.make("teardown", "STACK=local")
    assert refused.returncode == 2
    assert "To go ahead: make teardown STACK=local CONFIRM=local" in refused.stdout
    status, _ = bench.lab("teardown", "--stack", "dev", "--confirm", "local")
    assert status == 2
    assert bench.calls() == []


def test_teardown_of_local_lifts_protection_destroys_and_lists_old_volumes(bench):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local"))
    bench.answer(pulumi("stack", "export"), local_state())
    bench.answer(["docker", "volume", "ls"], "llm-infra-lab-local-qdrant-storage\n")
    status, out = bench.lab("teardown", "--confirm", "local")
    assert status == 0, out
    assert changes(bench.calls()) == [
        pulumi("config", "set", "llm-infra-lab:retainData", "false", "--stack", "local"),
        pulumi("up", "--yes", "--stack", "local"),
        pulumi("destroy", "--yes", "--stack", "local"),
        ["docker", "volume", "ls", "-q", "--filter", f"label={LABEL_PREFIX}.service"],
    ]
    volume = "llm-infra-lab-local-qdrant-storage"
    assert f"  Docker volume {volume}: docker volume rm {volume}\n" in out


# --- dev teardown ---------------------------------------------------------------------------------------------

BUCKET = "llm-infra-lab-dev-artifacts-123456789012-us-east-1"
REGION = ("--region", "us-east-1", "--output", "json")
PVC = "kubernetes.io/created-for/pvc/"


def dev_teardown(bench: Bench) -> None:
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("dev", current="dev"))
    bench.answer(pulumi("config", "--json"), config_json("dev"))
    bench.answer(pulumi("stack", "export"), dev_state())
    bench.answer(["aws", "s3api", "list-buckets"], {"Buckets": [{"Name": BUCKET}, {"Name": "someone-elses-bucket"}]})
    objects = {"Versions": [{"Key": "dvc/files/md5/ab/cdef", "VersionId": "v1"}], "DeleteMarkers": []}
    bench.answer(["aws", "s3api", "list-object-versions"], {}, after=["aws", "s3api", "delete-objects"])
    bench.answer(["aws", "s3api", "list-object-versions"], objects)
    volumes = [
        {"VolumeId": volume, "Tags": [{"Key": f"{PVC}name", "Value": claim}, {"Key": f"{PVC}namespace", "Value": ns}]}
        for volume, ns, claim in (("vol-0mlflow", "mlops-system", "db-mlflow-0"), ("vol-0other", "default", "data"))
    ]
    bench.answer(["aws", "ec2", "describe-volumes"], {"Volumes": volumes})
    snapshots = [{"DBSnapshotIdentifier": f"{PROJECT}-dev-mlflow-final-a1b2c3d4"}, {"DBSnapshotIdentifier": "other"}]
    bench.answer(["aws", "rds", "describe-db-snapshots"], {"DBSnapshots": snapshots})
    bench.answer(
        ["aws", "logs", "describe-log-groups"], {"logGroups": [{"logGroupName": f"/aws/eks/{PROJECT}-dev/cluster"}]}
    )


def test_teardown_of_dev_stops_before_anything_changes_at_a_bucket_with_data(bench):
    dev_teardown(bench)
    status, out = bench.lab("teardown", "--confirm", "dev")
    assert status == 2
    assert f"  s3://{BUCKET}\nNothing was changed." in out
    assert changes(bench.calls()) == [
        ["aws", "s3api", "list-buckets", *REGION],
        ["aws", "s3api", "list-object-versions", "--bucket", BUCKET, "--max-items", "1", *REGION],
    ]


def test_teardown_of_dev_asked_to_delete_leftovers_empties_buckets_destroys_and_deletes_what_outlives_pulumi(bench):
    dev_teardown(bench)
    status, out = bench.lab("teardown", "--confirm", "dev", "--delete-leftovers")
    assert status == 0, out
    delete = json.dumps({"Objects": [{"Key": "dvc/files/md5/ab/cdef", "VersionId": "v1"}], "Quiet": True})
    versions = ["aws", "s3api", "list-object-versions", "--bucket", BUCKET, "--max-items"]
    log_group = f"/aws/eks/{PROJECT}-dev/cluster"
    assert changes(bench.calls()) == [
        ["aws", "s3api", "list-buckets", *REGION],
        [*versions, "1", *REGION],
        pulumi("config", "set", "llm-infra-lab:retainData", "false", "--stack", "dev"),
        pulumi("up", "--yes", "--stack", "dev"),
        [*versions, "500", *REGION],
        ["aws", "s3api", "delete-objects", "--bucket", BUCKET, "--delete", delete, *REGION],
        [*versions, "500", *REGION],
        pulumi("destroy", "--yes", "--stack", "dev"),
        [
            "aws",
            "ec2",
            "describe-volumes",
            "--filters",
            f"Name=tag-key,Values={PVC}name",
            "Name=status,Values=available",
            *REGION,
        ],
        ["aws", "rds", "describe-db-snapshots", "--snapshot-type", "manual", *REGION],
        ["aws", "s3api", "list-buckets", *REGION],
        ["aws", "logs", "describe-log-groups", "--log-group-name-prefix", log_group, *REGION],
        ["aws", "ec2", "delete-volume", "--volume-id", "vol-0mlflow", *REGION],
        [
            "aws",
            "rds",
            "delete-db-snapshot",
            "--db-snapshot-identifier",
            f"{PROJECT}-dev-mlflow-final-a1b2c3d4",
            *REGION,
        ],
        [*versions, "500", *REGION],
        ["aws", "s3api", "delete-bucket", "--bucket", BUCKET, *REGION],
        ["aws", "logs", "delete-log-group", "--log-group-name", log_group, *REGION],
    ]
    assert "Unattached EBS volume vol-0other of claim default/data: not known to be this stack's." in out


# --- DVC ------------------------------------------------------------------------------------------------------


def test_dvc_remote_runs_the_stacks_commands_in_the_dvc_repository_with_the_password_from_the_lab(bench, tmp_path):
    repository = tmp_path / "data"
    (repository / ".dvc").mkdir(parents=True)
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("config", "--json"), config_json("local", phase="kubernetes"))
    bench.answer(pulumi("stack", "output", "--json"), KUBERNETES_OUTPUTS)
    status, out = bench.lab("dvc-remote", "--dir", str(repository))
    assert status == 0, out
    status, _ = bench.lab("dvc-push", "--dir", str(repository))
    assert status == 0
    assert changes(bench.calls()) == [
        ["dvc", "remote", "add", "-d", "lab", "s3://lab-artifacts/dvc"],
        ["dvc", "remote", "modify", "lab", "endpointurl", "http://minio.localhost:8080"],
        ["dvc", "remote", "modify", "--local", "lab", "access_key_id", "lab-admin"],
        pulumi("stack", "output", "minioPassword", "--show-secrets", "--stack", "local", "--cwd", str(REPO)),
        ["dvc", "remote", "modify", "--local", "lab", "secret_access_key", SECRETS["minioPassword"]],
        ["dvc", "push"],
    ]


def test_dvc_needs_a_repository_and_a_stack_with_an_artifact_store(bench, tmp_path):
    bench.answer(pulumi("stack", "ls", "--json"), stacks_json("local", current="local"))
    bench.answer(pulumi("stack", "output", "--json"), LOCAL_OUTPUTS)
    _, out = bench.lab("dvc-remote", "--dir", str(tmp_path))
    assert f"  - a DVC repository in {tmp_path}. Fix: cd {tmp_path} && git init && dvc init\n" in out
    (tmp_path / ".dvc").mkdir()
    status, out = bench.lab("dvc-remote", "--dir", str(tmp_path))
    assert status == 2
    assert out.startswith("Stack local has no DVC remote")
    assert [call for call in bench.calls() if call[0] == "dvc"] == []


# --- one source for what the CLI knows ------------------------------------------------------------------------


def test_the_required_settings_are_those_the_settings_refuse_empty():
    """Pulumi.yaml marks a setting Required; the settings module must refuse it empty, and no other."""
    project = lab.Project.load()
    empty = {key: "" for key, schema in project.settings.items() if schema.get("default") == ""}
    for phase in (p for p in PHASES if "dev" in p.stacks):
        error = str(failed_stack("dev", {**empty, "phase": phase.name}).error)
        refused = sorted(key for key in empty if f"{key} is not set" in error)
        assert sorted(project.required("dev", phase)) == refused, phase.name
    assert all(project.required("local", phase) == [] for phase in PHASES if "local" in phase.stacks)


def test_each_need_of_a_phase_has_a_check_and_the_volumes_label_is_the_docker_services():
    assert set(lab.NEEDS) == {need for phase in PHASES for need in phase.needs}
    local = lab.Lab(lab.Project.load(), "local")
    assert lab.LocalLeftovers(local, delete=False).label == f"label={LABEL_PREFIX}.service"


def test_install_and_test_are_the_readmes_two_commands():
    readme = (REPO / "README.md").read_text()
    for target in ("install", "test"):
        command = [MAKE, "-n", "--no-print-directory", "-C", str(REPO), target]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        assert f"\n{done.stdout.strip()}  " in readme, target
