"""Key settings of each program's config, parsed back from what is uploaded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest
import yaml

from stacks.catalog import PHASES
from tests.conftest import evaluate
from tests.docker_view import services


@pytest.fixture(scope="module")
def configs(observability):
    lgtm = services(observability)
    return {
        "loki": yaml.safe_load(lgtm["loki"].upload("/etc/loki/config.yaml")),
        "tempo": yaml.safe_load(lgtm["tempo"].upload("/etc/tempo/tempo.yaml")),
        "mimir": yaml.safe_load(lgtm["mimir"].upload("/etc/mimir/mimir.yaml")),
    }


def test_loki_is_single_tenant_tsdb_v13_on_the_filesystem(configs):
    loki = configs["loki"]
    assert loki["auth_enabled"] is False
    (schema,) = loki["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert loki["common"]["replication_factor"] == 1
    assert loki["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert loki["common"]["path_prefix"] == "/loki"


def test_loki_accepts_otlp_with_structured_metadata(configs):
    assert configs["loki"]["limits_config"]["allow_structured_metadata"] is True


def test_loki_retention_is_enforced_by_the_compactor(configs):
    loki = configs["loki"]
    assert loki["limits_config"]["retention_period"] == "168h"
    assert loki["compactor"]["retention_enabled"] is True
    # Loki refuses to start with retention on and no delete request store.
    assert loki["compactor"]["delete_request_store"] == "filesystem"


def test_loki_ruler_reads_the_shipped_rule_files_and_serves_them_to_grafana(configs, observability):
    ruler = configs["loki"]["ruler"]
    # `local` reads plain Prometheus rule files, with LogQL expressions, from <directory>/<tenant>/.
    assert ruler["storage"]["type"] == "local"
    assert ruler["enable_api"] is True, "Grafana lists the rules and their alerts through the ruler API"
    assert "alertmanager_url" not in ruler, "the lab runs no Alertmanager: alerts are evaluated and listed only"
    # With auth off, Loki puts every request in the tenant `fake`.
    rule_files = services(observability)["loki"].uploads_under(ruler["storage"]["local"]["directory"] + "/fake/")
    assert list(rule_files) == ["/etc/loki/rules/fake/llm-agents-logs.yaml"]
    groups = yaml.safe_load(next(iter(rule_files.values())))["groups"]
    assert {rule["alert"] for group in groups for rule in group["rules"]} == {
        "LLMAgentUngroundedAnswers",
        "LLMAgentErrorLogBurst",
    }


def test_tempo_is_monolithic_with_local_storage_under_its_volume(configs):
    tempo = configs["tempo"]
    trace = tempo["storage"]["trace"]
    assert trace["backend"] == "local"
    assert trace["wal"]["path"].startswith("/var/tempo/") and trace["local"]["path"].startswith("/var/tempo/")
    assert tempo["metrics_generator"]["storage"]["path"].startswith("/var/tempo/")
    # Tempo 3 rejects the 2.x blocks that monolithic mode no longer has.
    assert not {"ingester", "compactor", "ingester_client", "metrics_generator_client"} & set(tempo)


def test_tempo_overrides_use_the_scoped_format(configs):
    overrides = configs["tempo"]["overrides"]
    assert list(overrides) == ["defaults"]
    assert overrides["defaults"]["metrics_generator"]["processors"] == ["service-graphs", "span-metrics"]


def test_mimir_is_single_node_classic_architecture(configs):
    mimir = configs["mimir"]
    assert mimir["multitenancy_enabled"] is False
    assert mimir["ingester"]["ring"]["replication_factor"] == 1
    assert mimir["store_gateway"]["sharding_ring"]["replication_factor"] == 1
    assert mimir["ingest_storage"] == {"enabled": False}, "stated: Mimir 3 prefers ingest storage, which needs Kafka"
    assert mimir["blocks_storage"]["backend"] == "filesystem"


def test_mimir_keeps_exemplars(configs):
    assert configs["mimir"]["limits"]["max_global_exemplars_per_user"] > 0


def test_mimir_ruler_reads_the_shipped_rule_files(configs, observability):
    storage = configs["mimir"]["ruler_storage"]
    # `local` reads plain Prometheus rule files from <directory>/<tenant>/.
    assert storage["backend"] == "local"
    rule_files = services(observability)["mimir"].uploads_under(storage["local"]["directory"] + "/anonymous/")
    assert list(rule_files) == ["/etc/mimir/rules/anonymous/llm-agents.yaml"]
    groups = yaml.safe_load(next(iter(rule_files.values())))["groups"]
    assert {rule["alert"] for group in groups for rule in group["rules"]} == {
        "LLMCostBudgetBurn",
        "LLMAgentHighErrorRate",
        "LLMAgentSlowResponses",
        "LLMAgentPromptInjectionBurst",
        "LLMWorkflowSlow",
    }


def test_mimir_writes_only_under_its_volume(configs):
    mimir = configs["mimir"]
    paths = [
        mimir["blocks_storage"]["filesystem"]["dir"],
        mimir["blocks_storage"]["tsdb"]["dir"],
        mimir["blocks_storage"]["bucket_store"]["sync_dir"],
        mimir["compactor"]["data_dir"],
        mimir["ruler"]["rule_path"],
        mimir["activity_tracker"]["filepath"],
    ]
    assert all(path.startswith("/data/") for path in paths), paths


def test_no_program_phones_home(configs, observability):
    assert configs["loki"]["analytics"]["reporting_enabled"] is False
    assert configs["tempo"]["usage_report"]["reporting_enabled"] is False
    assert configs["mimir"]["usage_stats"]["enabled"] is False
    assert "--disable-reporting" in services(observability)["alloy"].container["command"]
    assert services(observability)["grafana"].env["GF_ANALYTICS_REPORTING_ENABLED"] == "false"


ALIAS = re.compile(r"(^|[\s:\[,-])[&*]id\d{3}\b", re.MULTILINE)
"""PyYAML's anchors and aliases, written when one object appears twice in the data it dumps."""


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)
    elif isinstance(value, pulumi.StringAsset):
        yield value.text


@pytest.mark.parametrize(("stack", "phase"), [(s, p.name) for p in PHASES for s in p.stacks])
def test_no_rendered_config_uses_yaml_anchors(stack, phase):
    """Every file a program reads is plain YAML: a shared mapping is written out twice."""
    run = evaluate(stack, phase=phase)
    found = [r.name for r in run.resources if any(ALIAS.search(text) for text in strings(dict(r.inputs)))]
    assert not found, f"YAML anchors in {found}"
