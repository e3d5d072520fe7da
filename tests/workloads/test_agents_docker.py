"""Phase `agents` on the local stack: Qdrant, the reviewers, the workflow and their traffic on Docker."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from components.observability.alerts import ERROR_RATIO_THRESHOLD
from components.workloads.agent import source_tag
from stacks.settings import ConfigError
from tests.conftest import evaluate
from tests.docker_view import REMOTE_IMAGE, VOLUME, endpoints, services
from tests.harness import failed_stack

AGENTS = ("prompt-reviewer", "code-critic")
WORKFLOW = "learning-cycle"
ADDED = {"qdrant", *AGENTS, WORKFLOW, "traffic"}
MEMORY_BUDGET_MIB = 3072


@pytest.fixture(scope="module")
def agents_run():
    return evaluate("local", phase="agents")


@pytest.fixture(scope="module")
def running(agents_run):
    return services(agents_run)


def reachable(run, url: str) -> bool:
    parts = urlsplit(url)
    return parts.port in endpoints(run).get(parts.hostname, set())


def test_agents_phase_adds_qdrant_agents_and_traffic(running):
    assert set(running) == {"loki", "tempo", "mimir", "alloy", "grafana"} | ADDED


def test_running_memory_fits_the_phase_budget(running):
    total = sum(service.container["memory"] for service in running.values())
    assert total <= MEMORY_BUDGET_MIB, f"phase needs {total} MiB, budget {MEMORY_BUDGET_MIB}"


def test_agent_image_is_built_once_from_the_app_and_pinned_to_its_source(agents_run, running):
    built = [image for image in agents_run.of_type(REMOTE_IMAGE) if image.get("build")]
    assert len(built) == 1
    (image,) = built
    assert image["build"]["context"] == "apps/agent"
    assert image["name"] == f"llm-infra-lab/agent:{source_tag()}"
    assert re.fullmatch(r"[0-9a-f]{12}", source_tag())
    assert {running[name].image for name in (*AGENTS, WORKFLOW, "traffic")} == {image["name"]}
    assert running["qdrant"].image == "qdrant/qdrant:v1.18.2-unprivileged"


def test_source_tag_follows_the_code_and_ignores_tests_and_caches(tmp_path):
    for folder in ("agent", "tests", ".mypy_cache", "agent/__pycache__"):
        (tmp_path / folder).mkdir()
    (tmp_path / "agent" / "app.py").write_text("print('v1')\n")
    first = source_tag(tmp_path)
    (tmp_path / "tests" / "test_app.py").write_text("def test(): pass\n")
    (tmp_path / ".mypy_cache" / "cache.json").write_text("{}")
    (tmp_path / "agent" / "__pycache__" / "app.pyc").write_bytes(b"\0")
    assert source_tag(tmp_path) == first
    (tmp_path / ".dockerignore").write_text("tests/\n")
    assert source_tag(tmp_path) != first, "build settings are part of the image"
    first = source_tag(tmp_path)
    (tmp_path / "agent" / "app.py").write_text("print('v2')\n")
    assert source_tag(tmp_path) != first


@pytest.mark.parametrize("name", AGENTS)
def test_agents_send_telemetry_to_alloy_and_retrieve_from_qdrant(agents_run, running, name):
    env = running[name].env
    assert env["AGENT_ROLE"] == name
    assert env["OTEL_SERVICE_NAME"] == name
    assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])[1:3] == ("alloy:4317", "")
    assert reachable(agents_run, env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert urlsplit(env["QDRANT_URL"]).hostname == "qdrant"
    assert reachable(agents_run, env["QDRANT_URL"])
    assert running[name].listening_ports["http"] == int(env["PORT"])


def test_the_workflow_calls_both_reviewers_on_the_lab_network_and_nothing_else(agents_run, running):
    env = running[WORKFLOW].env
    assert env["AGENT_ROLE"] == env["OTEL_SERVICE_NAME"] == WORKFLOW
    reviewers = {env["PROMPT_REVIEWER_URL"], env["CODE_CRITIC_URL"]}
    assert {urlsplit(url).hostname for url in reviewers} == set(AGENTS)
    assert all(reachable(agents_run, url) for url in reviewers)
    assert "QDRANT_URL" not in env
    assert running[WORKFLOW].listening_ports["http"] == int(env["PORT"]) == 8083


def test_traffic_reaches_the_reviewers_and_the_workflow(agents_run, running):
    urls = running["traffic"].env["AGENT_URLS"].split(",")
    assert {urlsplit(url).hostname for url in urls} == {*AGENTS, WORKFLOW}
    assert all(reachable(agents_run, url) for url in urls)
    assert running["traffic"].container["command"] == ["python", "-m", "agent.traffic"]


def test_agents_are_published_on_loopback_and_qdrant_is_not(running):
    assert [(p["ip"], p["external"]) for p in running["prompt-reviewer"].container["ports"]] == [("127.0.0.1", 8081)]
    assert [(p["ip"], p["external"]) for p in running["code-critic"].container["ports"]] == [("127.0.0.1", 8082)]
    assert [(p["ip"], p["external"]) for p in running[WORKFLOW].container["ports"]] == [("127.0.0.1", 8083)]
    assert not running["qdrant"].container.get("ports")
    assert not running["traffic"].container.get("ports")


def test_qdrant_data_is_retained_and_owned_by_its_user(agents_run, running):
    volume = agents_run.named(VOLUME, "qdrant-storage")
    assert volume["name"] == "llm-infra-lab-local-qdrant-storage" and volume.retain_on_delete
    assert running["qdrant"].container["user"] == "1000:1000"
    assert running["qdrant"].env["QDRANT__STORAGE__STORAGE_PATH"] == "/qdrant/storage"
    assert running["qdrant"].container["volumes"][0]["containerPath"] == "/qdrant/storage"


@pytest.mark.parametrize("name", [*AGENTS, "traffic"])
def test_agent_containers_run_non_root_on_a_read_only_root(running, name):
    container = running[name].container
    assert container["user"] == "10001:10001"
    assert container["readOnly"] is True
    assert set(container["tmpfs"]) == {"/tmp"}
    assert container["capabilities"] == {"drops": ["ALL"]}


def test_agents_have_http_health_checks_qdrant_a_bash_probe(running):
    for name in AGENTS:
        probe = " ".join(running[name].container["healthcheck"]["tests"])
        assert f"http://127.0.0.1:{running[name].listening_ports['http']}/healthz" in probe
    assert "GET /readyz" in " ".join(running["qdrant"].container["healthcheck"]["tests"])
    traffic_probe = " ".join(running["traffic"].container["healthcheck"]["tests"])
    assert f"http://127.0.0.1:{running['traffic'].env['PORT']}/healthz" in traffic_probe


def test_traffic_is_brisk_when_simulated_and_frugal_when_paid(running):
    assert float(running["traffic"].env["TRAFFIC_RATE"]) == 1.0
    paid = services(evaluate("local", phase="agents", llmProvider="anthropic", anthropicApiKey="sk-ant-test"))
    assert float(paid["traffic"].env["TRAFFIC_RATE"]) <= 1 / 60


def test_simulated_errors_stay_below_the_error_alert(running):
    for name in AGENTS:
        assert float(running[name].env["SIMULATED_ERROR_RATE"]) < ERROR_RATIO_THRESHOLD


def test_simulated_provider_needs_no_secret(running):
    for name in AGENTS:
        assert running[name].env["LLM_PROVIDER"] == "simulated"
        assert not running[name].container.has_secret_inputs
        assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"} & set(running[name].env)


def test_a_real_provider_key_reaches_the_agents_only_as_a_secret():
    run = evaluate(
        "local", phase="agents", llmProvider="anthropic", anthropicApiKey="sk-ant-test", llmModel="claude-test"
    )
    running = services(run)
    for name in AGENTS:
        assert running[name].env["ANTHROPIC_API_KEY"] == "sk-ant-test"
        assert running[name].env["LLM_MODEL"] == "claude-test"
        assert running[name].container.has_secret_inputs
    assert "ANTHROPIC_API_KEY" not in running["traffic"].env
    assert all("sk-ant-test" not in str(value) for value in run.outputs.values())


def test_a_real_provider_without_its_key_is_refused_before_any_resource():
    run = failed_stack("local", {"phase": "agents", "llmProvider": "openai"})
    assert isinstance(run.error, ConfigError)
    assert "llmProvider is openai but openaiApiKey is not set" in str(run.error)
    assert "pulumi config set --secret llm-infra-lab:openaiApiKey" in str(run.error)
    assert run.resources == []


def test_the_cache_and_routing_are_on_by_default_and_a_setting_away(running):
    for name in AGENTS:
        assert (running[name].env["SEMANTIC_CACHE"], running[name].env["ROUTING"]) == ("on", "on")
        assert "LLM_CHEAP_MODEL" not in running[name].env, "the agent's default for its provider"
        assert "AGENT_API_KEY" not in running[name].env, "published on loopback only: no key asked"
    flipped = services(
        evaluate("local", phase="agents", semanticCache="false", modelRouting="false", llmCheapModel="m")
    )
    for name in AGENTS:
        assert (flipped[name].env["SEMANTIC_CACHE"], flipped[name].env["ROUTING"]) == ("off", "off")
        assert flipped[name].env["LLM_CHEAP_MODEL"] == "m"


@pytest.mark.parametrize(
    ("key", "value"), [("llmProvider", "bedrock"), ("llmMonthlyBudgetUsd", "-5"), ("semanticCache", "maybe")]
)
def test_bad_llm_settings_are_refused(key, value):
    run = failed_stack("local", {"phase": "agents", key: value})
    assert f"pulumi config set llm-infra-lab:{key}" in str(run.error)
    assert run.resources == []


def test_outputs_add_the_agent_urls(agents_run):
    assert agents_run.outputs["agentUrls"] == {
        "prompt-reviewer": "http://localhost:8081",
        "code-critic": "http://localhost:8082",
        WORKFLOW: "http://localhost:8083",
    }
    assert agents_run.secret_outputs == {"grafanaAdminPassword"}
