"""Helm values for the LGTM charts on EKS, built from the same config the Docker stack runs.

Each store keeps what the local stack decides (schema, structured metadata, span metrics,
exemplars, replication of 1, rule files, datasources, dashboards) and swaps the filesystem for
its own S3 bucket, reached through the IRSA role annotated on the chart's service account.
Every pod meets the `restricted` Pod Security Standard and requests the memory it is limited to.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import yaml

from components.aws.irsa import SERVICE_ACCOUNT_ANNOTATION
from components.observability import grafana as grafana_module
from components.observability import loki as loki_module
from components.observability import mimir as mimir_module
from components.observability import tempo as tempo_module
from components.runtime import restricted
from components.runtime.spec import go_memory_limit

MIMIR_RETENTION = "7d"
"""Metrics, like logs and traces: a week."""
WAL_GIB = 5
CPU_REQUEST = "100m"
CPU_LIMIT = "1"
MIMIR_HTTP_PORT = 8080
"""The chart's `server.http_listen_port` for every Mimir component."""
MIMIR_COMPONENTS_MIB = {
    "distributor": 192,
    "ingester": 512,
    "querier": 256,
    "query_frontend": 128,
    "query_scheduler": 96,
    "store_gateway": 192,
    "compactor": 192,
    "ruler": 192,
}
"""The classic architecture's smallest set: one replica each, no Kafka, alertmanager or gateway. The
query-scheduler stays: since chart 6.0 the query-frontend and queriers always go through it."""
CHART_VALUES = Path(__file__).with_name("chart_values")
GRAFANA_DASHBOARDS = "llm-infra-lab"
"""The dashboard provider, and the directory under /var/lib/grafana/dashboards it reads."""
ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
SECRET_KEY_KEY = "secret-key"


@dataclass(frozen=True)
class StoreBucket:
    """Where a store keeps its data, and the role its service account acts as."""

    name: str
    region: str
    role_arn: pulumi.Input[str]

    @property
    def endpoint(self) -> str:
        return f"s3.{self.region}.amazonaws.com"


def pod_security(uid: int) -> dict:
    return restricted.pod(uid, fs_group=True)


CONTAINER_SECURITY = restricted.container(restate_pod=True)
"""Restated per container: some of the charts' containers take no pod-level context."""


def resources(memory_mib: int) -> dict:
    return restricted.resources(memory_mib, CPU_REQUEST, CPU_LIMIT)


def _service_account(bucket: StoreBucket) -> dict:
    return {"create": True, "annotations": {SERVICE_ACCOUNT_ANNOTATION: bucket.role_arn}}


def rules_volume(config_map: pulumi.Input[str], tenant_directory: str) -> dict:
    """A component's `extraVolumes` and `extraVolumeMounts`: a ConfigMap of rule files, read-only, where a ruler
    with local storage reads a tenant's rules."""
    return {
        "extraVolumes": [{"name": "rules", "configMap": {"name": config_map}}],
        "extraVolumeMounts": [{"name": "rules", "mountPath": tenant_directory, "readOnly": True}],
    }


def loki(bucket: StoreBucket, storage_class: str | None, rules_config_map: pulumi.Input[str]) -> dict:
    """Single binary, TSDB v13 in S3, native OTLP; no gateway, canary, caches or MinIO.

    The ruler runs in the single binary and reads the Docker stack's rule files from a ConfigMap through the
    Docker stack's ruler config (`loki.rulerConfig`, local storage), so only chunks go to the bucket. The chart's
    own `ruler.directories` mounts a ConfigMap it renders only in the Distributed mode.
    """
    local = loki_module.config()
    schema = copy.deepcopy(local["schema_config"])
    for period in schema["configs"]:
        period["object_store"] = "s3"
    return {
        # The chart's current name for single binary (chart 18.x); its settings stay under `singleBinary`.
        "deploymentMode": "Monolithic",
        "loki": {
            "image": {"tag": loki_module.IMAGE.tag},
            "auth_enabled": local["auth_enabled"],
            "commonConfig": {"replication_factor": local["common"]["replication_factor"]},
            "schemaConfig": schema,
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": bucket.name},
                "s3": {"region": bucket.region, "endpoint": bucket.endpoint},
            },
            "rulerConfig": local["ruler"],
            "limits_config": local["limits_config"],
            "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
            "analytics": local["analytics"],
            "podSecurityContext": pod_security(10001),
            "containerSecurityContext": CONTAINER_SECURITY,
        },
        "serviceAccount": _service_account(bucket),
        "singleBinary": {
            "replicas": 1,
            "resources": resources(loki_module.MEMORY_MIB),
            "extraEnv": [{"name": "GOMEMLIMIT", "value": go_memory_limit(loki_module.MEMORY_MIB)}],
            **rules_volume(rules_config_map, f"{loki_module.RULES_PATH}/{loki_module.TENANT}"),
            # The write-ahead log outlives the pod; the claim is kept when the release goes.
            "persistence": {
                "enabled": True,
                "size": f"{WAL_GIB}Gi",
                "storageClass": storage_class,
                "enableStatefulSetAutoDeletePVC": False,
            },
        },
        **{role: {"replicas": 0} for role in ("read", "write", "backend")},
        "gateway": {"enabled": False},
        "lokiCanary": {"enabled": False},
        "test": {"enabled": False},
        "chunksCache": {"enabled": False},
        "resultsCache": {"enabled": False},
        "sidecar": {"rules": {"enabled": False}},
        "minio": {"enabled": False},
    }


def tempo(bucket: StoreBucket, storage_class: str | None, metrics_remote_write: str) -> dict:
    """Monolithic Tempo 3 (no Kafka) on S3; its metrics-generator remote-writes to Mimir with exemplars."""
    local = tempo_module.config(metrics_remote_write)
    generator = local["metrics_generator"]
    wal = local["storage"]["trace"]["wal"]
    return {
        "tempo": {
            "tag": tempo_module.IMAGE.tag,
            "reportingEnabled": local["usage_report"]["reporting_enabled"],
            "streamOverHttpEnabled": local["stream_over_http_enabled"],
            "receivers": {
                # The chart's own Jaeger receivers stay: a receiver with no protocol fails validation.
                "otlp": local["distributor"]["receivers"]["otlp"],
            },
            "storage": {
                "trace": {
                    "backend": "s3",
                    "s3": {"bucket": bucket.name, "endpoint": bucket.endpoint, "region": bucket.region},
                    "wal": wal,
                }
            },
            "metricsGenerator": {
                "enabled": True,
                "registry": generator["registry"],
                "storage": generator["storage"],
            },
            "overrides": {"defaults": local["overrides"]["defaults"]},
            "resources": resources(tempo_module.MEMORY_MIB),
            "extraEnv": [{"name": "GOMEMLIMIT", "value": go_memory_limit(tempo_module.MEMORY_MIB)}],
            "securityContext": CONTAINER_SECURITY,
        },
        "securityContext": pod_security(10001),
        "serviceAccount": {**_service_account(bucket), "automountServiceAccountToken": False},
        "persistence": {"enabled": True, "storageClassName": storage_class, "size": f"{WAL_GIB}Gi"},
    }


def mimir(bucket: StoreBucket, storage_class: str | None, rules_config_map: str) -> dict:
    """mimir-distributed in its classic architecture, one replica per component, blocks in S3.

    The static shape is chart_values/mimir.yaml; its classic-architecture deletions go to Helm as a values file
    (`mimir_deleted_defaults`). The ruler reads the lab's rule files from a ConfigMap (local ruler storage,
    read-only), the same files the Docker stack's Mimir loads.
    """
    local = mimir_module.config()
    components = {
        component: {
            "replicas": 1,
            "resources": resources(memory_mib),
            # The chart reads `env` per component (and `global.extraEnv`); `extraEnv` only in 5.x.
            "env": [{"name": "GOMEMLIMIT", "value": go_memory_limit(memory_mib)}],
            "containerSecurityContext": CONTAINER_SECURITY,
        }
        for component, memory_mib in MIMIR_COMPONENTS_MIB.items()
    }
    # Up to two hours of samples live in the TSDB head before a block reaches S3.
    components["ingester"]["persistentVolume"] = {
        "enabled": True,
        "size": f"{WAL_GIB}Gi",
        "storageClass": storage_class,
    }
    components["ruler"] |= rules_volume(rules_config_map, f"{mimir_module.RULES_PATH}/{mimir_module.TENANT}")
    derived = {
        "image": {"tag": mimir_module.IMAGE.tag},
        "serviceAccount": _service_account(bucket),
        "rbac": {"podSecurityContext": pod_security(10001)},
        "mimir": {
            "structuredConfig": {
                "multitenancy_enabled": local["multitenancy_enabled"],
                "ingest_storage": local["ingest_storage"],
                "ingester": {"ring": {"replication_factor": local["ingester"]["ring"]["replication_factor"]}},
                "store_gateway": local["store_gateway"],
                "common": {
                    "storage": {
                        "backend": "s3",
                        "s3": {"bucket_name": bucket.name, "endpoint": bucket.endpoint, "region": bucket.region},
                    }
                },
                "ruler_storage": local["ruler_storage"],
                "limits": {**local["limits"], "compactor_blocks_retention_period": MIMIR_RETENTION},
                "usage_stats": local["usage_stats"],
            }
        },
        **components,
    }
    return merged(_chart_values("mimir.yaml"), derived)


def mimir_deleted_defaults() -> dict:
    """What the Mimir release sets back to Mimir's own defaults: nulls the chart renders, Mimir ignores."""
    return _chart_values("mimir-classic-architecture.yaml")


def _chart_values(name: str) -> dict:
    return yaml.safe_load((CHART_VALUES / name).read_text())


def merged(base: Mapping, top: Mapping) -> dict:
    """`top` over `base`, maps merged key by key."""
    result = dict(base)
    for key, value in top.items():
        result[key] = (
            merged(base[key], value) if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) else value
        )
    return result


def grafana(
    *,
    datasources: dict,
    env: dict[str, str],
    admin_secret: pulumi.Input[str],
    dashboards_config_map: pulumi.Input[str],
) -> dict:
    """The Docker stack's datasources, dashboards and settings; credentials from a Secret we own.

    No claim: everything Grafana shows is provisioned from code, and a claim would tie the pod
    to one availability zone of a spot node group. Changes made in the UI go with the pod.
    """
    provider = copy.deepcopy(grafana_module.dashboard_provider())
    for entry in provider["providers"]:
        entry["options"]["path"] = f"/var/lib/grafana/dashboards/{GRAFANA_DASHBOARDS}"
    return {
        # The chart's own default is the distroless build of its appVersion; pinned to the Docker stack's.
        "image": {"repository": grafana_module.IMAGE.repository, "tag": f"{grafana_module.IMAGE.tag}-distroless"},
        "admin": {"existingSecret": admin_secret, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        # The port, the admin user and GOMEMLIMIT are the chart's to set (3000, the Secret, the limit).
        "env": dict(env),
        "envValueFrom": {"GF_SECURITY_SECRET_KEY": {"secretKeyRef": {"name": admin_secret, "key": SECRET_KEY_KEY}}},
        "datasources": {"datasources.yaml": datasources},
        "dashboardProviders": {"dashboardproviders.yaml": provider},
        "dashboardsConfigMaps": {GRAFANA_DASHBOARDS: dashboards_config_map},
        "persistence": {"enabled": False},
        "initChownData": {"enabled": False},
        "testFramework": {"enabled": False},
        "rbac": {"create": False},
        "serviceAccount": {"create": True, "automountServiceAccountToken": False},
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security(472),
        "containerSecurityContext": CONTAINER_SECURITY,
        "resources": resources(grafana_module.MEMORY_MIB),
    }
