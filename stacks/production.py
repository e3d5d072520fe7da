"""Phase `production` (stack dev): what the platform lacks to serve people, on the same cluster.

Certificates from Let's Encrypt for every host, MLflow's runs in RDS PostgreSQL, the LGTM
stack on the cluster storing in S3, the agents and Qdrant from the local phases with an
autoscaler and a disruption budget, and a model server, each at https://<name>.<domain>.
A node group of its own carries the additions, so the platform's nodes stay as they were.

`build` runs the platform's own builder with the options this phase needs (autoscaled nodes, TLS on
the gateway, a database for MLflow), then adds one step at a time: capacity, TLS, observability,
workloads, serving, and what it all costs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from components.aws.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.aws.container_image import ContainerImage, ContainerImageArgs
from components.aws.irsa import SERVICE_ACCOUNT_ANNOTATION, IrsaRole, IrsaRoleArgs, read_prefix_policy
from components.aws.postgres import PostgresDatabase, PostgresDatabaseArgs
from components.gateway.cert_manager import CertManager, CertManagerArgs
from components.gateway.traefik_gateway import GatewayTls
from components.observability import lgtm_eks_values as lgtm_values
from components.observability.lgtm_eks import LgtmOnEks, LgtmOnEksArgs, store_buckets
from components.runtime.kubernetes_service import Allow, KubernetesTarget, Pods, Scaling, labels_for
from components.serving.kserve import MODEL_PORT, ModelServing, ModelServingArgs, ServedModel
from components.workloads.agent import AGENT_NAMES, agent_image
from components.workloads.agents_kubernetes import AgentsOnKubernetes, AgentsOnKubernetesArgs
from stacks import namespaces, platform
from stacks.namespaces import lab_namespace
from stacks.platform import Foundation, PlatformOptions, PlatformPhase
from stacks.settings import ProductionSettings, Settings

METRICS_SERVER = "metrics-server"
"""The EKS add-on the HorizontalPodAutoscalers read CPU use from."""
AGENT_SCALING = Scaling(minimum=2, maximum=3, cpu_percent=70)
EXPECTED_TELEMETRY_GB = 10
"""Loki, Tempo and Mimir objects a lab keeps within their retention."""
MODEL_READER = "model-reader"
"""The model server's service account, and its IRSA role's stem."""
HOSTS = ("mlflow", "grafana", *AGENT_NAMES, "models")
"""Every host the gateway serves: each gets its own TLS listener and certificate name."""


@dataclass
class ProductionPhase:
    base: PlatformPhase
    production: ProductionSettings
    database: PostgresDatabase
    agents: AgentsOnKubernetes
    lgtm: LgtmOnEks
    serving: ModelServing
    load_balancer: pulumi.Output[str]

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        domain = self.production.domain
        return {
            **self.base.outputs,
            "grafanaUrl": self.lgtm.grafana_url,
            "grafanaAdminPassword": self.lgtm.grafana_admin_password,
            "agentUrls": {agent.name: self.base.gateway.url(agent.name) for agent in self.agents.agents},
            "agentApiKey": self.agents.access_key,
            "modelUrl": self.serving.url,
            "databaseEndpoint": self.database.address,
            # Until the cloud gives the load balancer a name, the record cannot be written yet.
            "dnsRecord": self.load_balancer.apply(lambda url: dns_record(domain, url)),
            "certificateIssuer": CertManager.issuer_name(self.production.acme_environment),
        }


def dns_record(domain: str, load_balancer_url: str) -> str:
    """The wildcard record to create, once the cloud has given the load balancer a name."""
    if not load_balancer_url.startswith("http://"):
        return load_balancer_url
    return f"*.{domain} CNAME {load_balancer_url.removeprefix('http://')}"


@dataclass
class Capacity:
    """The workloads' node group, and what the additions wait for before they are scheduled."""

    on_nodes: pulumi.ResourceOptions
    on_nodes_with_storage: pulumi.ResourceOptions
    """For workloads with claims: the StorageClass too."""
    metrics: pulumi.Resource
    """metrics-server: the autoscaled workloads wait for it."""


def build(settings: Settings) -> ProductionPhase:
    production = settings.production
    assert production is not None, "phase production reads its settings"
    issuer = CertManager.issuer_name(production.acme_environment)
    databases: list[PostgresDatabase] = []

    def mlflow_database(base: Foundation) -> PostgresDatabase:
        databases.append(database(base, production))
        return databases[0]

    platform_phase = platform.build(
        settings,
        PlatformOptions(
            # The cluster autoscaler sizes both node groups from here on.
            autoscaled_nodes=True,
            domain=production.domain,
            tls=GatewayTls(cluster_issuer=issuer, hosts=HOSTS),
            mlflow_database=mlflow_database,
        ),
    )
    base = platform_phase.base
    nodes = capacity(base, production)
    certificates = tls(base, platform_phase, nodes)
    agents_ns = base.retained(lab_namespace(namespaces.AGENTS, nodes.on_nodes, routed=True))
    serving_ns = lab_namespace(namespaces.SERVING, nodes.on_nodes, routed=True)
    lgtm = observability(base, platform_phase, nodes, log_namespaces=(agents_ns, serving_ns))
    agents = workloads(base, platform_phase, nodes, agents_ns, lgtm)
    serving = model_serving(base, platform_phase, nodes, serving_ns, certificates)
    (mlflow_db,) = databases
    costs = platform.estimates(
        settings,
        platform.inventory(
            base,
            node_pools=(platform.node_pool(base.config, production.workload_nodes.desired, group="workloads"),),
            rds_instances=(mlflow_db.cost_item(),),
            s3_gb=EXPECTED_TELEMETRY_GB,
            # Loki, Tempo and Mimir's ingester keep their write-ahead logs on claims.
            volume_gib=platform.claimed_gib(platform_phase.mlflow.spec, agents.qdrant) + 3 * lgtm_values.WAL_GIB,
        ),
    )
    return ProductionPhase(
        base=replace(platform_phase, costs=costs),
        production=production,
        database=mlflow_db,
        agents=agents,
        lgtm=lgtm,
        serving=serving,
        load_balancer=platform_phase.gateway.load_balancer_url(),
    )


def database(base: Foundation, production: ProductionSettings) -> PostgresDatabase:
    """MLflow's backend store: PostgreSQL in the private subnets, reachable from the cluster's nodes only."""
    return PostgresDatabase(
        "mlflow-db",
        PostgresDatabaseArgs(
            name=f"{base.settings.name_prefix}-mlflow",
            vpc_id=base.network.vpc_id,
            subnet_ids=base.network.private_subnet_ids,
            client_security_group_id=base.cluster.node_security_group_id,
            instance_class=production.db_instance_class,
            storage_gib=production.db_storage_gib,
            backup_retention_days=production.db_backup_retention_days,
            retain=base.settings.retain_data,
        ),
        opts=base.on_cloud,
    )


def capacity(base: Foundation, production: ProductionSettings) -> Capacity:
    """A node group for the additions, metrics-server for their autoscalers, and the Cluster Autoscaler."""
    cluster = base.cluster
    sizes = production.workload_nodes
    workload_nodes = cluster.node_group("workloads", sizes.minimum, sizes.desired, sizes.maximum)
    metrics = cluster.addon(
        METRICS_SERVER,
        platform.addon_versions(base.cloud, (METRICS_SERVER,))[METRICS_SERVER],
        after=[workload_nodes],
    )
    # The additions wait for their nodes; what the platform phase has keeps its options.
    on_nodes = pulumi.ResourceOptions.merge(base.on_cluster, pulumi.ResourceOptions(depends_on=[workload_nodes]))
    ClusterAutoscaler(
        "cluster-autoscaler",
        ClusterAutoscalerArgs(
            cluster_name=cluster.name,
            region=base.config.region,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            role_name=f"{base.settings.name_prefix}-cluster-autoscaler",
            kubernetes_version=platform.KUBERNETES_VERSION,
        ),
        opts=on_nodes,
    )
    return Capacity(
        on_nodes=on_nodes,
        on_nodes_with_storage=pulumi.ResourceOptions.merge(on_nodes, pulumi.ResourceOptions(depends_on=[base.storage])),
        metrics=metrics,
    )


def tls(base: Foundation, platform_phase: PlatformPhase, nodes: Capacity) -> CertManager:
    """cert-manager and the Let's Encrypt issuers the gateway's certificate annotation names."""
    production = base.settings.production
    assert production is not None
    return CertManager(
        "cert-manager",
        CertManagerArgs(
            target=lab_namespace(namespaces.CERT_MANAGER, nodes.on_nodes),
            email=production.acme_email,
            gateway_namespace=namespaces.GATEWAY,
            # cert-manager looks for the Gateway API only as it starts.
            gateway_api_crds=platform_phase.gateway.crds,
        ),
        opts=nodes.on_nodes,
    )


def observability(
    base: Foundation, platform_phase: PlatformPhase, nodes: Capacity, *, log_namespaces: tuple[KubernetesTarget, ...]
) -> LgtmOnEks:
    """The LGTM stack on the cluster, each store in an S3 bucket of its own; Alloy reads every namespace's logs."""
    settings = base.settings
    cluster = base.cluster
    store_prefix = f"{settings.name_prefix}-{base.account}"
    agents_ns, serving_ns = log_namespaces
    return LgtmOnEks(
        "lgtm",
        LgtmOnEksArgs(
            target=base.retained(lab_namespace(namespaces.OBSERVABILITY, nodes.on_nodes, routed=True)),
            gateway=platform_phase.gateway,
            buckets=store_buckets(store_prefix, settings.retain_data, base.on_cloud, moved_from="lgtm"),
            role_name_prefix=store_prefix,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            region=base.config.region,
            llm_monthly_budget_usd=settings.llm.monthly_budget_usd,
            log_namespaces=(agents_ns, base.mlops_namespace, base.gateway_namespace, serving_ns),
            model_metrics=Allow(Pods(namespaces.SERVING), MODEL_PORT),
        ),
        opts=nodes.on_nodes_with_storage,
    )


def workloads(
    base: Foundation, platform_phase: PlatformPhase, nodes: Capacity, target: KubernetesTarget, lgtm: LgtmOnEks
) -> AgentsOnKubernetes:
    """The agents and Qdrant from the local phases, their image in ECR, autoscaled, routed, observed."""
    settings = base.settings
    config = base.config
    gateway = platform_phase.gateway
    image = ContainerImage(
        "agent-image",
        ContainerImageArgs(
            repository=f"{settings.name_prefix}/agent",
            image=agent_image(),
            registry=f"{base.account}.dkr.ecr.{config.region}.amazonaws.com",
            engine=docker.Provider("engine"),
        ),
        opts=base.on_cloud,
    )
    agents = AgentsOnKubernetes(
        "agents",
        AgentsOnKubernetesArgs(
            target=target,
            image=image.image,
            image_ready=image.pushed,
            llm=settings.llm.backend,
            otlp=lgtm.alloy_spec,
            gateway=gateway.pods,
            scaling=AGENT_SCALING,
            ask_for_key=True,
        ),
        opts=pulumi.ResourceOptions.merge(
            nodes.on_nodes_with_storage, pulumi.ResourceOptions(depends_on=[nodes.metrics])
        ),
    )
    for agent in agents.agents:
        gateway.route(agent.name, agent, "http", parent=agents)
    lgtm.collect_from(agents.senders)
    return agents


def model_serving(
    base: Foundation,
    platform_phase: PlatformPhase,
    nodes: Capacity,
    target: KubernetesTarget,
    certificates: CertManager,
) -> ModelServing:
    """KServe behind the gateway, serving the promoted model from the artifact bucket once one is named."""
    production = base.settings.production
    assert production is not None
    uri = production.served_model_uri
    model = ServedModel(uri, service_account=model_reader(base, target, uri)) if uri else None
    return ModelServing(
        "serving",
        ModelServingArgs(
            controller_target=lab_namespace(namespaces.KSERVE, nodes.on_nodes),
            target=target,
            gateway=platform_phase.gateway,
            cert_manager=certificates.release,
            model=model,
            scraper=Pods(namespaces.OBSERVABILITY, "alloy"),
        ),
        opts=nodes.on_nodes,
    )


def model_reader(base: Foundation, target: KubernetesTarget, uri: str) -> pulumi.Output[str]:
    """A service account whose IRSA role may read the model's directory of the artifact bucket, and nothing else."""
    prefix = uri.removeprefix("s3://").split("/", 1)[1]
    role = IrsaRole(
        MODEL_READER,
        IrsaRoleArgs(
            name=f"{base.settings.name_prefix}-model-reader",
            oidc_provider_arn=base.cluster.oidc_provider_arn,
            oidc_issuer=base.cluster.oidc_issuer,
            namespace=target.name,
            service_account=MODEL_READER,
            policy_json=read_prefix_policy(base.bucket.bucket_arn, prefix),
        ),
        opts=base.on_cloud,
    )
    account = k8s.core.v1.ServiceAccount(
        MODEL_READER,
        metadata={
            "name": MODEL_READER,
            "namespace": target.namespace.metadata.name,
            "labels": labels_for(MODEL_READER),
            "annotations": {SERVICE_ACCOUNT_ANNOTATION: role.role_arn},
        },
        automount_service_account_token=False,
        opts=base.on_cluster,
    )
    return account.metadata.name
