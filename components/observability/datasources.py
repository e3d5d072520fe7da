"""Grafana datasource identities shared by provisioning, dashboards and correlations.

Fixed uids let dashboards, alert rules and cross-signal links name a datasource before
Grafana exists, and keep those links stable across reinstalls.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.models.dashboard import DataSourceRef


@dataclass(frozen=True)
class Datasource:
    uid: str
    type: str
    name: str

    @property
    def ref(self) -> DataSourceRef:
        return DataSourceRef(type_val=self.type, uid=self.uid)


METRICS = Datasource(uid="mimir", type="prometheus", name="Mimir")
LOGS = Datasource(uid="loki", type="loki", name="Loki")
TRACES = Datasource(uid="tempo", type="tempo", name="Tempo")
