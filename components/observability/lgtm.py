"""The LGTM stack as data: five service specs wired to each other, for any runtime."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.observability import alerts, log_alerts
from components.observability import mimir as mimir_module
from components.observability.alloy import alloy_service
from components.observability.grafana import grafana_service
from components.observability.loki import loki_service
from components.observability.mimir import mimir_service
from components.observability.tempo import tempo_service
from components.runtime.spec import ServiceSpec


@dataclass(frozen=True)
class LgtmServices:
    loki: ServiceSpec
    tempo: ServiceSpec
    mimir: ServiceSpec
    alloy: ServiceSpec
    grafana: ServiceSpec

    def all(self) -> tuple[ServiceSpec, ...]:
        """In start order: stores first, then what writes to and reads from them."""
        return (self.loki, self.mimir, self.tempo, self.alloy, self.grafana)


def lgtm_services(
    *,
    grafana_port: int,
    grafana_admin_password: pulumi.Input[str],
    grafana_secret_key: pulumi.Input[str],
    llm_monthly_budget_usd: float,
) -> LgtmServices:
    loki = loki_service(rule_files=log_alerts.rule_files())
    mimir = mimir_service(rule_files=alerts.rule_files(llm_monthly_budget_usd))
    metrics_push = mimir.url("http", mimir_module.PUSH_PATH)
    tempo = tempo_service(metrics_remote_write=metrics_push)
    alloy = alloy_service(
        traces_otlp_grpc=tempo.address("otlp-grpc"),
        metrics_remote_write=metrics_push,
        logs_otlp_http=loki.url("http", "/otlp"),
    )
    grafana = grafana_service(
        http_port=grafana_port,
        metrics_query_url=mimir.url("http", mimir_module.QUERY_PATH),
        logs_url=loki.url("http"),
        traces_url=tempo.url("http"),
        admin_password=grafana_admin_password,
        secret_key=grafana_secret_key,
    )
    return LgtmServices(loki=loki, tempo=tempo, mimir=mimir, alloy=alloy, grafana=grafana)
