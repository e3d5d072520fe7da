"""The LGTM stack on EKS from Grafana's Helm charts, each store on its own S3 bucket through IRSA.

The charts run the same programs, versions and settings as the Docker stack (ADR 0003, ADR 0012):
the values are built from the same config, datasource, dashboard and rule functions, so the two
runtimes cannot drift. Each store gets a bucket with the artifact bucket's guards and a role only
its own service account can assume, granting only that bucket. Alloy, rendered by the lab's own
Kubernetes renderer, exports straight to the stores; Grafana is reached through the lab's gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.aws.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.aws.irsa import IrsaRole, IrsaRoleArgs, bucket_access_policy
from components.gateway.traefik_gateway import TraefikGateway
from components.observability import alerts, dashboards, grafana, log_alerts, loki, mimir, tempo
from components.observability import lgtm_eks_values as values
from components.observability.alloy import MEMORY_MIB as ALLOY_MEMORY_MIB
from components.observability.alloy_kubernetes import AlloyOnKubernetes, AlloyOnKubernetesArgs, cluster_alloy_to_stores
from components.runtime.helm import chart_release
from components.runtime.kubernetes_service import Allow, KubernetesTarget, Pods, labels_for
from components.runtime.spec import ServiceSpec


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str
    version: str


GRAFANA_COMMUNITY = "https://grafana-community.github.io/helm-charts"
CHARTS = {
    "loki": Chart("loki", GRAFANA_COMMUNITY, "18.11.0"),
    "tempo": Chart("tempo", GRAFANA_COMMUNITY, "3.0.0"),
    "mimir": Chart("mimir-distributed", "https://grafana.github.io/helm-charts", "6.2.0"),
    "grafana": Chart("grafana", GRAFANA_COMMUNITY, "12.11.1"),
}
"""Loki, Tempo and Grafana moved to grafana-community in 2026; Mimir's chart stays with Grafana. Each is the
version whose values the tests check (../shared/charts), or says there why another is safe."""
STORES = ("loki", "tempo", "mimir")
TEMPO_S3_TAGGING = ("s3:GetObjectTagging", "s3:PutObjectTagging")
"""Tempo's documented minimum adds object tagging to what every store needs."""
GRAFANA_SERVICE_PORT = 80
GRAFANA_POD_PORT = 3000
"""The chart's `service.targetPort`: Grafana's default port, so the Docker stack's GF_SERVER_HTTP_PORT is not set."""
API_SERVER_PORT = 443


def store_urls(namespace: str) -> dict[str, str]:
    """The in-cluster addresses of the charts' Services (each release is named after its store)."""

    def host(service: str) -> str:
        return f"{service}.{namespace}"

    def mimir_url(component: str, path: str) -> str:
        return f"http://{host(f'mimir-{component}')}:{values.MIMIR_HTTP_PORT}{path}"

    return {
        "logs": f"http://{host('loki')}:{loki.HTTP_PORT}",
        "traces": f"http://{host('tempo')}:{tempo.HTTP_PORT}",
        "traces_otlp_grpc": f"{host('tempo')}:{tempo.OTLP_GRPC_PORT}",
        "metrics_push": mimir_url("distributor", mimir.PUSH_PATH),
        "metrics_query": mimir_url("query-frontend", mimir.QUERY_PATH),
    }


def alloy_spec(namespace: str, log_namespaces: tuple[str, ...], model_metrics: Allow | None = None) -> ServiceSpec:
    """The cluster Alloy's spec, known before anything exists: agents need its URL before `LgtmOnEks`."""
    urls = store_urls(namespace)
    return cluster_alloy_to_stores(
        namespace,
        traces_otlp_grpc=urls["traces_otlp_grpc"],
        metrics_remote_write=urls["metrics_push"],
        logs_otlp_http=f"{urls['logs']}/otlp",
        log_namespaces=log_namespaces,
        model_metrics=model_metrics,
    )


def alloy_destinations(namespace: str, model_metrics: Allow | None = None) -> tuple[Allow, ...]:
    """Alloy's egress: each store's pods on the port it writes to, the model servers it scrapes, nothing else."""
    return (
        Allow(Pods(namespace, "tempo"), tempo.OTLP_GRPC_PORT),
        Allow(Pods(namespace, "mimir"), values.MIMIR_HTTP_PORT),
        Allow(Pods(namespace, "loki"), loki.HTTP_PORT),
        *((model_metrics,) if model_metrics else ()),
    )


def store_buckets(
    name_prefix: str, retain: bool, opts: pulumi.ResourceOptions, *, moved_from: str | None = None
) -> dict[str, ArtifactBucket]:
    """A bucket per store, `<prefix>-loki-…`, `<prefix>-tempo-…`, `<prefix>-mimir-…` (S3 adds a unique suffix).

    Made beside the stack, not inside it: a quickstop keeps every protected resource with its parents and
    dependencies, and `LgtmOnEks` waits for nodes; a bucket under it would keep the cluster too.
    `moved_from` names the component they were children of, so an existing stack keeps its buckets.
    """
    aliases = [pulumi.Alias(parent=pulumi.create_urn(moved_from, LgtmOnEks.TYPE))] if moved_from else None
    return {
        store: ArtifactBucket(
            f"{store}-bucket",
            ArtifactBucketArgs(name_prefix=f"{name_prefix}-{store}", retain=retain),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=aliases)),
        )
        for store in STORES
    }


@dataclass
class LgtmOnEksArgs:
    target: KubernetesTarget
    """The observability namespace; its storage_class holds the stores' write-ahead logs."""
    gateway: TraefikGateway
    buckets: Mapping[str, ArtifactBucket]
    """Each store's bucket (`store_buckets`)."""
    role_name_prefix: str
    """Roles are `<prefix>-loki-…` and so on; at most 30 characters: IAM leaves 38 to a role's name prefix."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    region: str
    llm_monthly_budget_usd: float
    log_namespaces: tuple[KubernetesTarget, ...]
    """Namespaces whose pod logs Alloy collects."""
    model_metrics: Allow | None = None
    """The model servers' pods and the port of their metrics, which Alloy scrapes into Mimir."""


class LgtmOnEks(pulumi.ComponentResource):
    """Roles for the stores' buckets, four Helm releases, the rules and dashboards they load, Alloy, and
    Grafana's route."""

    TYPE = "llm-infra-lab:observability:LgtmOnEks"

    def __init__(self, name: str, args: LgtmOnEksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        if set(args.buckets) != set(STORES):
            raise ValueError(f"LgtmOnEks needs a bucket for each of {', '.join(STORES)}, got {', '.join(args.buckets)}")
        self.namespace = args.target.name
        urls = store_urls(self.namespace)
        self.buckets = dict(args.buckets)
        self.roles = {store: self._role(store, args) for store in STORES}
        storage_class = args.target.storage_class

        def bucket(store: str) -> values.StoreBucket:
            return values.StoreBucket(
                name=self.buckets[store].bucket_name, region=args.region, role_arn=self.roles[store].role_arn
            )

        rules = self._config_map("mimir-rules", alerts.rule_files(args.llm_monthly_budget_usd))
        log_rules = self._config_map("loki-rules", log_alerts.rule_files())
        boards = self._config_map("grafana-dashboards", dashboards.dashboard_files())
        admin = self._grafana_admin()
        self.grafana_datasources = grafana.datasources(urls["metrics_query"], urls["logs"], urls["traces"])
        self.values = {
            "loki": values.loki(bucket("loki"), storage_class, log_rules.metadata.name),
            "tempo": values.tempo(bucket("tempo"), storage_class, urls["metrics_push"]),
            "mimir": values.mimir(bucket("mimir"), storage_class, rules.metadata.name),
            "grafana": values.grafana(
                datasources=self.grafana_datasources,
                env=grafana.SETTINGS,
                admin_secret=admin.metadata.name,
                dashboards_config_map=boards.metadata.name,
            ),
        }
        self.releases = {
            release: self._release(release, args.target, depends_on=[rules, log_rules, boards, admin])
            for release in CHARTS
        }
        self.network_policies = self._network_policies(args)
        self._target = args.target
        self._log_namespaces = args.log_namespaces
        self._model_metrics = args.model_metrics
        self.alloy_spec = alloy_spec(
            self.namespace, tuple(target.name for target in args.log_namespaces), args.model_metrics
        )
        self.route = args.gateway.route_to(
            name="grafana",
            namespace=self.namespace,
            service="grafana",
            port=GRAFANA_SERVICE_PORT,
            parent=self,
            labels=labels_for("grafana"),
        )
        self.grafana_url = args.gateway.url("grafana") if args.gateway.domain else args.gateway.load_balancer_url()
        self.register_outputs(
            {
                "grafanaUrl": self.grafana_url,
                "otlpGrpcUrl": self.alloy_spec.url("otlp-grpc"),
                "buckets": {store: b.bucket_name for store, b in self.buckets.items()},
            }
        )

    def collect_from(self, senders: tuple[Pods, ...]) -> AlloyOnKubernetes:
        """Alloy, admitting OTLP from `senders`: called once the workloads exist, which need `alloy_spec` first."""
        self.alloy = AlloyOnKubernetes(
            "alloy",
            AlloyOnKubernetesArgs(
                spec=self.alloy_spec,
                target=self._target,
                log_namespaces=self._log_namespaces,
                senders=senders,
                destinations=alloy_destinations(self.namespace, self._model_metrics),
                api_server_ports=(API_SERVER_PORT,),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.releases[store] for store in STORES]),
        )
        return self.alloy

    def _role(self, store: str, args: LgtmOnEksArgs) -> IrsaRole:
        """Assumable by the store's chart service account (named after its release) only."""
        extra = TEMPO_S3_TAGGING if store == "tempo" else ()
        return IrsaRole(
            store,
            IrsaRoleArgs(
                name=f"{args.role_name_prefix[:30]}-{store}",
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=self.namespace,
                service_account=store,
                policy_json=bucket_access_policy(self.buckets[store].bucket_arn, extra_object_actions=extra),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _config_map(self, name: str, files: dict[str, str]) -> k8s.core.v1.ConfigMap:
        return k8s.core.v1.ConfigMap(
            name,
            metadata={"name": name, "namespace": self.namespace, "labels": labels_for(name)},
            data=files,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _grafana_admin(self) -> k8s.core.v1.Secret:
        """Generated credentials in a Secret the chart reads (`admin.existingSecret` and the secret key)."""
        child = pulumi.ResourceOptions(parent=self)
        credentials = grafana.GrafanaCredentials.generate(child)
        self.grafana_admin_user = grafana.ADMIN_USER
        self.grafana_admin_password = credentials.admin_password
        return k8s.core.v1.Secret(
            "grafana-admin",
            metadata={"name": "grafana-admin", "namespace": self.namespace, "labels": labels_for("grafana")},
            type="Opaque",
            string_data={
                values.ADMIN_USER_KEY: grafana.ADMIN_USER,
                values.ADMIN_PASSWORD_KEY: self.grafana_admin_password,
                values.SECRET_KEY_KEY: credentials.secret_key,
            },
            opts=child,
        )

    def _release(self, release: str, target: KubernetesTarget, depends_on: list) -> k8s.helm.v3.Release:
        chart = CHARTS[release]
        return chart_release(
            release,
            chart=chart.name,
            version=chart.version,
            repository=chart.repository,
            namespace=target.namespace.metadata.name,
            values=self.values[release],
            deleted_defaults=values.mimir_deleted_defaults() if release == "mimir" else None,
            timeout=900,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )

    def _network_policies(self, args: LgtmOnEksArgs) -> list[k8s.networking.v1.NetworkPolicy]:
        """Ingress to the chart pods: the stores from this namespace only, Grafana from the gateway only.

        Egress stays open: the stores reach S3 and STS over the internet (no NAT, no endpoints) and
        each other in-namespace; the policies close the way in, which is what an attacker would use.
        """
        child = pulumi.ResourceOptions(parent=self)
        same_namespace = Pods(self.namespace).peer()
        stores = k8s.networking.v1.NetworkPolicy(
            "lgtm-stores",
            metadata={"name": "lgtm-stores", "namespace": self.namespace, "labels": labels_for("lgtm-stores")},
            spec={
                "pod_selector": {
                    "match_expressions": [
                        {"key": "app.kubernetes.io/instance", "operator": "In", "values": list(STORES)}
                    ]
                },
                "policy_types": ["Ingress"],
                "ingress": [{"from": [same_namespace]}],
            },
            opts=child,
        )
        grafana_ingress = k8s.networking.v1.NetworkPolicy(
            "grafana",
            metadata={"name": "grafana", "namespace": self.namespace, "labels": labels_for("grafana")},
            spec={
                "pod_selector": {"match_labels": {"app.kubernetes.io/instance": "grafana"}},
                "policy_types": ["Ingress"],
                "ingress": [
                    {"from": [args.gateway.pods.peer()], "ports": [{"port": GRAFANA_POD_PORT, "protocol": "TCP"}]}
                ],
            },
            opts=child,
        )
        return [stores, grafana_ingress]


def memory_requests_mib() -> dict[str, int]:
    """Memory each pod of the stack requests (= its limit), by pod: for budgeting nodes."""
    return {
        "loki": loki.MEMORY_MIB,
        "tempo": tempo.MEMORY_MIB,
        **{f"mimir-{component}": mib for component, mib in values.MIMIR_COMPONENTS_MIB.items()},
        "grafana": grafana.MEMORY_MIB,
        "alloy": ALLOY_MEMORY_MIB,
    }
