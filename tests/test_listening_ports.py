"""Each program is told to listen on exactly the ports its service declares.

A Service, a probe, a NetworkPolicy and every client's URL use the declared port; the program itself
reads its port from a config file, a flag or a variable. This reads each program's own setting back
from what the phases render (Docker containers, Kubernetes Deployments and StatefulSets) and compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import yaml

from tests.alloy_view import resolved
from tests.conftest import evaluate
from tests.docker_view import services
from tests.k8s_view import containers, manifests, workloads


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _flag(args: list[str], flag: str) -> str:
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {args}")


def _yaml(files: dict[str, str], path: str) -> dict:
    return yaml.safe_load(files[path])


def loki(program) -> set[int]:
    server = _yaml(program.files, "/etc/loki/config.yaml")["server"]
    return {server["http_listen_port"], server["grpc_listen_port"]}


def tempo(program) -> set[int]:
    config = _yaml(program.files, "/etc/tempo/tempo.yaml")
    protocols = config["distributor"]["receivers"]["otlp"]["protocols"]
    return {config["server"]["http_listen_port"], *(_port(p["endpoint"]) for p in protocols.values())}


def mimir(program) -> set[int]:
    server = _yaml(program.files, "/etc/mimir/mimir.yaml")["server"]
    return {server["http_listen_port"], server["grpc_listen_port"]}


def alloy(program) -> set[int]:
    config = resolved(program.files, program.env)
    receivers = {int(port) for port in re.findall(r'endpoint\s*=\s*"0\.0\.0\.0:(\d+)"', config)}
    return {_port(_flag(program.args, "--server.http.listen-addr")), *receivers}


def grafana(program) -> set[int]:
    return {int(program.env.get("GF_SERVER_HTTP_PORT", "3000"))}


def qdrant(program) -> set[int]:
    return {int(program.env["QDRANT__SERVICE__HTTP_PORT"]), int(program.env["QDRANT__SERVICE__GRPC_PORT"])}


def agent(program) -> set[int]:
    return {int(program.env["PORT"])}


def mlflow(program) -> set[int]:
    return {int(_flag(program.args, "--port"))}


def minio(program) -> set[int]:
    return {_port(_flag(program.args, "--address")), _port(_flag(program.args, "--console-address"))}


LISTENS: dict[str, Callable] = {
    "loki": loki,
    "tempo": tempo,
    "mimir": mimir,
    "alloy": alloy,
    "grafana": grafana,
    "qdrant": qdrant,
    "prompt-reviewer": agent,
    "code-critic": agent,
    "traffic": agent,
    "mlflow": mlflow,
    "minio": minio,
}


class Program:
    def __init__(self, name: str, declared: set[int], args: list[str], env: dict[str, str], files: dict[str, str]):
        self.name, self.declared, self.args, self.env, self.files = name, declared, args, env, files


def docker_programs(stack: str, phase: str) -> list[Program]:
    return [
        Program(
            name,
            set(service.listening_ports.values()),
            list(service.container.get("command") or []),
            service.env,
            service.uploads_under("/"),
        )
        for name, service in services(evaluate(stack, phase=phase)).items()
    ]


def kubernetes_programs(stack: str, phase: str) -> list[Program]:
    objects = manifests(evaluate(stack, phase=phase))
    config_maps = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o.get("data", {})
        for o in objects
        if o["kind"] == "ConfigMap"
    }
    programs = []
    for workload in workloads(objects):
        namespace = workload["metadata"]["namespace"]
        pod = workload["spec"]["template"]["spec"]
        (container,) = [c for c in containers(workload) if c in pod["containers"]]
        volumes = {v["name"]: v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
        files = {
            mount["mountPath"]: config_maps[namespace, volumes[mount["name"]]][mount["subPath"]]
            for mount in container.get("volumeMounts", [])
            if mount["name"] in volumes and "subPath" in mount
        }
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        declared = {p["containerPort"] for p in container.get("ports", [])}
        programs.append(Program(workload["metadata"]["name"], declared, container.get("args", []), env, files))
    return programs


RUNTIMES = [
    ("local", "agents", docker_programs),
    ("local", "kubernetes", kubernetes_programs),
    ("dev", "production", kubernetes_programs),
]


@pytest.mark.parametrize(("stack", "phase", "programs"), RUNTIMES, ids=[f"{s}:{p}" for s, p, _ in RUNTIMES])
def test_every_program_listens_on_the_ports_its_service_declares(stack, phase, programs):
    checked = 0
    for program in programs(stack, phase):
        if program.name in LISTENS:
            assert LISTENS[program.name](program) == program.declared, program.name
            checked += 1
    assert checked >= 5, "the phase renders the lab's programs"
