"""The lab's LLM agents and their traffic generator: one image built from apps/agent.

The image tag is a hash of the app's source, so it is pinned like any other image and a
change to the code rolls the containers, while an unchanged app keeps its containers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components.runtime.spec import HealthCheck, Image, Port, ServiceSpec, python_http_probe

APP_DIR = "apps/agent"
REPO_ROOT = Path(__file__).resolve().parents[2]
ROLES = {"prompt-reviewer": 8081, "code-critic": 8082}
"""The reviewers, by the port each listens on."""
WORKFLOW = "learning-cycle"
WORKFLOW_PORT = 8083
AGENT_NAMES = (*ROLES, WORKFLOW)
"""Every service the image runs but the traffic: each is routed by the gateway."""
REVIEWER_URL_ENV = {"prompt-reviewer": "PROMPT_REVIEWER_URL", "code-critic": "CODE_CRITIC_URL"}
TRAFFIC_PORT = 8090
# Requests per second in total. A real provider bills every request: one a minute keeps the
# dashboards alive for a few dollars a month instead of hundreds.
TRAFFIC_RATE = {"simulated": 1.0, "paid": 1 / 60}
# Below the 5% error-rate alert: the lab starts quiet; raise it to watch the alert fire.
SIMULATED_ERROR_RATE = 0.02
# The semantic cache's embedding model and Qdrant client put an agent near 140 MiB under load.
AGENT_MEMORY_MIB = 256
# No embedding model: the workflow measured 105 MiB RSS under 20 concurrent runs (the traffic
# keeps at most 4 in flight), so it fits the traffic generator's allowance.
WORKFLOW_MEMORY_MIB = 128
TRAFFIC_MEMORY_MIB = 128
QDRANT_COLLECTION = "review-guidelines"
API_KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
ACCESS_KEY_ENV = "AGENT_API_KEY"


def source_tag(app_dir: Path = REPO_ROOT / APP_DIR) -> str:
    """A short hash over what goes into the image (tests and caches excluded)."""
    digest = hashlib.sha256()
    for path in sorted(app_dir.rglob("*")):
        relative = path.relative_to(app_dir)
        folders = relative.parts[:-1]
        if path.is_dir() or "tests" in folders or "__pycache__" in folders or any(f.startswith(".") for f in folders):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def agent_image() -> Image:
    """The image to build; hashing the source walks the app, so call it once per program."""
    return Image("llm-infra-lab/agent", source_tag(), build_context=APP_DIR)


@dataclass(frozen=True)
class LlmBackend:
    """The LLM the agents call, and the two cost levers in front of it a learner flips per stack."""

    provider: str
    model: str | None
    """The strong model; None uses the agent's default for the provider."""
    api_key: pulumi.Input[str] | None
    cheap_model: str | None = None
    """Where the router sends easy reviews; None uses the agent's default for the provider."""
    routing: bool = True
    semantic_cache: bool = True


def _switch(on: bool) -> str:
    return "on" if on else "off"


def _agent(
    name: str,
    image: Image,
    llm: LlmBackend,
    otlp_grpc_url: str,
    *,
    port: int,
    memory_mib: int,
    env: dict[str, str],
    access_key: pulumi.Input[str] | None,
) -> ServiceSpec:
    """What every role of the image shares: its LLM, telemetry, hardening, health check and keys."""
    env = {
        "AGENT_ROLE": name,
        "PORT": str(port),
        "LLM_PROVIDER": llm.provider,
        **env,
        "OTEL_SERVICE_NAME": name,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc_url,
        "OTEL_RESOURCE_ATTRIBUTES": "service.namespace=llm-infra-lab",
    }
    if llm.model:
        env["LLM_MODEL"] = llm.model
    if llm.cheap_model:
        env["LLM_CHEAP_MODEL"] = llm.cheap_model
    if llm.provider == "simulated":
        env["SIMULATED_ERROR_RATE"] = str(SIMULATED_ERROR_RATE)
    secret_env = {API_KEY_ENV[llm.provider]: llm.api_key} if llm.api_key is not None else {}
    if access_key is not None:
        secret_env[ACCESS_KEY_ENV] = access_key
    return ServiceSpec(
        name=name,
        image=image,
        ports=(Port("http", port, published=True),),
        memory_mib=memory_mib,
        env=env,
        secret_env=secret_env,
        user="10001:10001",
        read_only_root=True,
        scratch_paths=("/tmp",),
        health=HealthCheck(port="http", path="/healthz", command=python_http_probe(port, "/healthz")),
    )


def agent_service(
    role: str,
    image: Image,
    llm: LlmBackend,
    otlp_grpc_url: str,
    qdrant_url: str,
    *,
    access_key: pulumi.Input[str] | None = None,
) -> ServiceSpec:
    """One reviewer; with `access_key`, /review asks callers for it (where a network reaches the agent)."""
    env = {
        "QDRANT_URL": qdrant_url,
        "QDRANT_COLLECTION": QDRANT_COLLECTION,
        "ROUTING": _switch(llm.routing),
        "SEMANTIC_CACHE": _switch(llm.semantic_cache),
    }
    return _agent(
        role, image, llm, otlp_grpc_url, port=ROLES[role], memory_mib=AGENT_MEMORY_MIB, env=env, access_key=access_key
    )


def workflow_service(
    image: Image,
    llm: LlmBackend,
    otlp_grpc_url: str,
    reviewers: Sequence[ServiceSpec],
    *,
    access_key: pulumi.Input[str] | None = None,
) -> ServiceSpec:
    """learning-cycle, which calls the reviewers (with the same key, where they ask for one)."""
    env = {REVIEWER_URL_ENV[reviewer.name]: reviewer.url("http") for reviewer in reviewers}
    return _agent(
        WORKFLOW,
        image,
        llm,
        otlp_grpc_url,
        port=WORKFLOW_PORT,
        memory_mib=WORKFLOW_MEMORY_MIB,
        env=env,
        access_key=access_key,
    )


def traffic_service(
    image: Image,
    agent_urls: list[str],
    otlp_grpc_url: str,
    provider: str,
    *,
    access_key: pulumi.Input[str] | None = None,
) -> ServiceSpec:
    """Steady, bounded review traffic so the dashboards have data a minute after `pulumi up`."""
    return ServiceSpec(
        name="traffic",
        image=image,
        ports=(Port("http", TRAFFIC_PORT),),
        memory_mib=TRAFFIC_MEMORY_MIB,
        args=("python", "-m", "agent.traffic"),
        env={
            "AGENT_URLS": ",".join(agent_urls),
            "PORT": str(TRAFFIC_PORT),
            "TRAFFIC_RATE": str(TRAFFIC_RATE["simulated" if provider == "simulated" else "paid"]),
            "OTEL_SERVICE_NAME": "traffic",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_grpc_url,
        },
        secret_env={ACCESS_KEY_ENV: access_key} if access_key is not None else {},
        user="10001:10001",
        read_only_root=True,
        scratch_paths=("/tmp",),
        health=HealthCheck(port="http", path="/healthz", command=python_http_probe(TRAFFIC_PORT, "/healthz")),
    )
