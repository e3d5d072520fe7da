"""Every URL a program is configured with points at a service of the phase, on a port it listens on.

Configs are read back from what is uploaded into the containers, parsed with the same
format the program reads, and checked against the rendered network.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
import yaml

from tests.alloy_view import resolved
from tests.docker_view import endpoints, services


def host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    return parts.hostname, parts.port


def assert_reachable(run, address: str) -> None:
    host, port = host_port(address)
    table = endpoints(run)
    assert host in table, f"{address}: no service named {host} in the phase"
    assert port in table[host], f"{address}: {host} listens on {sorted(table[host])}, not {port}"


@pytest.fixture(scope="module")
def lgtm(observability):
    return services(observability)


@pytest.fixture(scope="module")
def datasources(lgtm):
    files = lgtm["grafana"].uploads_under("/etc/grafana/provisioning/datasources/")
    (text,) = files.values()
    return {ds["uid"]: ds for ds in yaml.safe_load(text)["datasources"]}


@pytest.fixture(scope="module")
def alloy_config(lgtm):
    return resolved(lgtm["alloy"].uploads_under("/etc/alloy/"), lgtm["alloy"].env)


def alloy_block(config: str, component: str, label: str) -> str:
    match = re.search(rf'^{re.escape(component)} "{label}" {{\n(.*?)^}}', config, re.S | re.M)
    assert match, f"Alloy config has no {component} {label!r}"
    return match.group(1)


def test_every_datasource_points_at_a_running_service(observability, datasources):
    assert set(datasources) == {"mimir", "loki", "tempo"}
    for ds in datasources.values():
        assert_reachable(observability, ds["url"])


def test_datasources_use_each_programs_query_api(datasources):
    assert datasources["mimir"]["type"] == "prometheus"
    assert urlsplit(datasources["mimir"]["url"]).path == "/prometheus"
    assert (datasources["loki"]["type"], datasources["tempo"]["type"]) == ("loki", "tempo")
    assert [ds["uid"] for ds in datasources.values() if ds.get("isDefault")] == ["mimir"]


def test_grafana_lists_the_alert_rules_of_mimir_and_loki(lgtm, datasources):
    """Grafana reads each ruler under the datasource's URL: Mimir's /prometheus prefix, Loki's root."""
    assert datasources["mimir"]["jsonData"]["manageAlerts"] is True
    assert datasources["loki"]["jsonData"]["manageAlerts"] is True
    assert urlsplit(datasources["loki"]["url"]).path == "", "Grafana appends /prometheus/api/v1/rules itself"
    assert yaml.safe_load(lgtm["loki"].upload("/etc/loki/config.yaml"))["ruler"]["enable_api"] is True


def test_correlations_link_every_signal_to_the_others(datasources):
    tempo = datasources["tempo"]["jsonData"]
    assert tempo["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert tempo["tracesToLogsV2"]["query"] == '{$${__tags}} | trace_id="$${__trace.traceId}"'
    assert tempo["tracesToMetrics"]["datasourceUid"] == "mimir"
    assert {q["name"] for q in tempo["tracesToMetrics"]["queries"]} == {"Request rate", "Error rate", "Latency p95"}
    assert tempo["serviceMap"]["datasourceUid"] == "mimir"
    assert tempo["nodeGraph"]["enabled"] is True
    (exemplars,) = datasources["mimir"]["jsonData"]["exemplarTraceIdDestinations"]
    assert exemplars == {"name": "trace_id", "datasourceUid": "tempo", "urlDisplayLabel": "View trace"}
    (derived,) = datasources["loki"]["jsonData"]["derivedFields"]
    assert derived["datasourceUid"] == "tempo"
    assert (derived["matcherType"], derived["matcherRegex"]) == ("label", "trace_id")
    assert derived["url"] == "$${__value.raw}", "Grafana expands $ in provisioning files unless doubled"


def test_correlation_queries_only_use_metrics_tempo_generates(lgtm, datasources):
    tempo = yaml.safe_load(lgtm["tempo"].upload("/etc/tempo/tempo.yaml"))
    processors = tempo["overrides"]["defaults"]["metrics_generator"]["processors"]
    assert "span-metrics" in processors and "service-graphs" in processors
    for query in datasources["tempo"]["jsonData"]["tracesToMetrics"]["queries"]:
        for metric in re.findall(r"\btraces_\w+", query["query"]):
            assert metric in {"traces_spanmetrics_calls_total", "traces_spanmetrics_latency_bucket"}


def test_exemplar_label_matches_what_tempo_and_alloy_write(lgtm, datasources):
    tempo = yaml.safe_load(lgtm["tempo"].upload("/etc/tempo/tempo.yaml"))
    label = tempo["overrides"]["defaults"]["metrics_generator"]["trace_id_label_name"]
    # Alloy's OTLP-to-Prometheus conversion names the exemplar label trace_id.
    assert label == "trace_id"
    assert datasources["mimir"]["jsonData"]["exemplarTraceIdDestinations"][0]["name"] == label


def test_alloy_receives_otlp_on_the_standard_ports(lgtm, alloy_config):
    receiver = alloy_block(alloy_config, "otelcol.receiver.otlp", "default")
    assert re.search(r'grpc {\s+endpoint = "0.0.0.0:4317"', receiver)
    assert re.search(r'http {\s+endpoint = "0.0.0.0:4318"', receiver)
    assert {4317, 4318} <= set(lgtm["alloy"].listening_ports.values())


def test_alloy_exports_each_signal_to_its_store(observability, alloy_config):
    traces = re.search(r'endpoint = "([^"]+)"', alloy_block(alloy_config, "otelcol.exporter.otlp", "tempo"))[1]
    logs = re.search(r'endpoint = "([^"]+)"', alloy_block(alloy_config, "otelcol.exporter.otlphttp", "loki"))[1]
    metrics = re.search(r'url\s+= "([^"]+)"', alloy_block(alloy_config, "prometheus.remote_write", "mimir"))[1]
    assert host_port(traces) == ("tempo", 4317)
    assert urlsplit(logs)[1:3] == ("loki:3100", "/otlp")
    assert urlsplit(metrics)[1:3] == ("mimir:9009", "/api/v1/push")
    for address in (traces, logs, metrics):
        assert_reachable(observability, address)


def test_alloy_pipeline_routes_every_signal_through_the_limiter(alloy_config):
    receiver_output = alloy_block(alloy_config, "otelcol.receiver.otlp", "default")
    for signal in ("metrics", "logs", "traces"):
        assert re.search(rf"{signal}\s+= \[otelcol.processor.memory_limiter.default.input\]", receiver_output)
    batch = alloy_block(alloy_config, "otelcol.processor.batch", "default")
    assert "otelcol.exporter.prometheus.mimir.input" in batch
    assert "otelcol.processor.transform.event_name.input" in batch, "logs reach Loki through the event-name copy"
    event_name = alloy_block(alloy_config, "otelcol.processor.transform", "event_name")
    assert "otelcol.exporter.otlphttp.loki.input" in event_name
    assert "otelcol.exporter.otlp.tempo.input" in batch
    assert "send_exemplars = true" in alloy_block(alloy_config, "prometheus.remote_write", "mimir")


def test_tempo_remote_writes_generated_metrics_to_mimir(observability, lgtm):
    tempo = yaml.safe_load(lgtm["tempo"].upload("/etc/tempo/tempo.yaml"))
    (remote_write,) = tempo["metrics_generator"]["storage"]["remote_write"]
    assert urlsplit(remote_write["url"]).path == "/api/v1/push"
    assert remote_write["send_exemplars"] is True
    assert_reachable(observability, remote_write["url"])


@pytest.mark.parametrize(
    ("name", "path", "port_key"),
    [
        ("loki", "/etc/loki/config.yaml", ("server", "http_listen_port")),
        ("tempo", "/etc/tempo/tempo.yaml", ("server", "http_listen_port")),
        ("mimir", "/etc/mimir/mimir.yaml", ("server", "http_listen_port")),
    ],
)
def test_programs_listen_where_their_peers_dial(lgtm, name, path, port_key):
    config = yaml.safe_load(lgtm[name].upload(path))
    section, key = port_key
    assert config[section][key] == lgtm[name].listening_ports["http"]
    assert f"-config.file={path}" in lgtm[name].container["command"]


def test_tempo_receivers_listen_on_all_interfaces(lgtm):
    tempo = yaml.safe_load(lgtm["tempo"].upload("/etc/tempo/tempo.yaml"))
    protocols = tempo["distributor"]["receivers"]["otlp"]["protocols"]
    ports = lgtm["tempo"].listening_ports
    assert protocols["grpc"]["endpoint"] == f"0.0.0.0:{ports['otlp-grpc']}"
    assert protocols["http"]["endpoint"] == f"0.0.0.0:{ports['otlp-http']}"
