"""Phase `production` (stack dev): what the platform lacks to serve people, on the same cluster.

Certificates from Let's Encrypt for every host, MLflow's runs in RDS PostgreSQL, the LGTM
stack on the cluster storing in S3, the agents and Qdrant from the local phases with an
autoscaler and a disruption budget, and a model server, each at https://<name>.<domain>.
A node group of its own carries the additions, so the platform's nodes stay as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.aws import cost
from components.aws.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from components.aws.container_image import ContainerImage, ContainerImageArgs
from components.aws.postgres import PostgresDatabase, PostgresDatabaseArgs
from components.gateway.cert_manager import CertManager, CertManagerArgs
from components.gateway.traefik_gateway import ROUTES_LABEL, GatewayTls, TraefikGateway
from components.mlops.mlflow_eks import MlflowOnEks
from components.observability import lgtm_eks_values as lgtm_values
from components.observability.lgtm_eks import LgtmOnEks, LgtmOnEksArgs, store_buckets
from components.serving.kserve import ModelServing, ModelServingArgs
from components.workloads.agent import agent_image
from components.workloads.agents_kubernetes import AgentsOnKubernetes, AgentsOnKubernetesArgs
from components.workloads.kubernetes_service import Scaling, namespace
from stacks import platform
from stacks.settings import ProductionSettings, Settings

AGENTS_NAMESPACE = "agents"
OBSERVABILITY_NAMESPACE = "observability"
SERVING_NAMESPACE = "serving"
KSERVE_NAMESPACE = "kserve"
CERT_MANAGER_NAMESPACE = "cert-manager"
METRICS_SERVER = "metrics-server"
"""The EKS add-on the HorizontalPodAutoscalers read CPU use from."""
AGENT_SCALING = Scaling(minimum=2, maximum=4, cpu_percent=70)
EXPECTED_TELEMETRY_GB = 10
"""Loki, Tempo and Mimir objects a lab keeps within their retention."""
HOSTS = ("mlflow", "grafana", "prompt-reviewer", "code-critic", "models")
"""Every host the gateway serves: each gets its own TLS listener and certificate name."""


@dataclass
class ProductionPhase:
    base: platform.PlatformPhase
    production: ProductionSettings
    gateway: TraefikGateway
    mlflow: MlflowOnEks
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
            "agentUrls": {agent.name: self.gateway.url(agent.name) for agent in self.agents.agents},
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


def build(settings: Settings) -> ProductionPhase:
    production = settings.production
    assert production is not None, "phase production reads its settings"
    # The cluster autoscaler sizes both node groups from here on.
    base = platform.foundation(settings, autoscaled_nodes=True)
    cluster, config = base.cluster, base.config
    name = settings.name_prefix

    sizes = production.workload_nodes
    workload_nodes = cluster.node_group("workloads", sizes.minimum, sizes.desired, sizes.maximum)
    metrics = cluster.addon(
        METRICS_SERVER,
        platform.addon_versions(base.cloud, (METRICS_SERVER,))[METRICS_SERVER],
        after=[workload_nodes],
    )
    # The additions wait for their nodes; what the platform phase has keeps its options.
    on_nodes = pulumi.ResourceOptions.merge(base.on_cluster, pulumi.ResourceOptions(depends_on=[workload_nodes]))
    # Workloads with claims wait for the StorageClass too.
    on_nodes_with_storage = pulumi.ResourceOptions.merge(on_nodes, pulumi.ResourceOptions(depends_on=[base.storage]))
    ClusterAutoscaler(
        "cluster-autoscaler",
        ClusterAutoscalerArgs(
            cluster_name=cluster.name,
            region=config.region,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            role_name=f"{name}-cluster-autoscaler",
            kubernetes_version=platform.KUBERNETES_VERSION,
        ),
        opts=on_nodes,
    )

    database = PostgresDatabase(
        "mlflow-db",
        PostgresDatabaseArgs(
            name=f"{name}-mlflow",
            vpc_id=base.network.vpc_id,
            subnet_ids=base.network.private_subnet_ids,
            client_security_group_id=cluster.node_security_group_id,
            instance_class=production.db_instance_class,
            storage_gib=production.db_storage_gib,
            backup_retention_days=production.db_backup_retention_days,
            retain=settings.retain_data,
        ),
        opts=base.on_cloud,
    )

    def lab_namespace(space: str, **labels: str):
        return namespace(space, False, on_nodes, **labels)

    routed = {ROUTES_LABEL: "true"}
    issuer = CertManager.issuer_name(production.acme_environment)
    gateway = platform.traefik_gateway(
        base, domain=production.domain, tls=GatewayTls(cluster_issuer=issuer, hosts=HOSTS)
    )
    certificates = CertManager(
        "cert-manager",
        CertManagerArgs(
            target=lab_namespace(CERT_MANAGER_NAMESPACE),
            email=production.acme_email,
            # cert-manager looks for the Gateway API only as it starts.
            gateway_api_crds=gateway.crds,
        ),
        opts=on_nodes,
    )
    mlflow = platform.mlflow_on_eks(base, gateway, backend_store_uri=database.uri, database_network=config.vpc_cidr)

    agents_ns = base.retained(lab_namespace(AGENTS_NAMESPACE, **routed))
    observability_ns = base.retained(lab_namespace(OBSERVABILITY_NAMESPACE, **routed))
    serving_ns = lab_namespace(SERVING_NAMESPACE, **routed)
    store_prefix = f"{name}-{base.account}"
    lgtm = LgtmOnEks(
        "lgtm",
        LgtmOnEksArgs(
            target=observability_ns,
            gateway=gateway,
            buckets=store_buckets(store_prefix, settings.retain_data, base.on_cloud, moved_from="lgtm"),
            role_name_prefix=store_prefix,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            region=config.region,
            llm_monthly_budget_usd=settings.llm.monthly_budget_usd,
            log_namespaces=(agents_ns, base.mlops_namespace, base.gateway_namespace, serving_ns),
        ),
        opts=on_nodes_with_storage,
    )
    image = ContainerImage(
        "agent-image",
        ContainerImageArgs(
            repository=f"{name}/agent",
            image=agent_image(),
            registry=f"{base.account}.dkr.ecr.{config.region}.amazonaws.com",
            engine=docker.Provider("engine"),
        ),
        opts=base.on_cloud,
    )
    agents = AgentsOnKubernetes(
        "agents",
        AgentsOnKubernetesArgs(
            target=agents_ns,
            image=image.image,
            image_ready=image.pushed,
            llm=settings.llm.backend,
            otlp=lgtm.alloy_spec,
            gateway=gateway.pods,
            scaling=AGENT_SCALING,
        ),
        opts=pulumi.ResourceOptions.merge(on_nodes_with_storage, pulumi.ResourceOptions(depends_on=[metrics])),
    )
    for agent in agents.agents:
        gateway.route(agent.name, agent, "http", parent=agents)
    lgtm.collect_from(agents.senders)
    serving = ModelServing(
        "serving",
        ModelServingArgs(
            controller_target=lab_namespace(KSERVE_NAMESPACE),
            target=serving_ns,
            gateway=gateway,
            cert_manager=certificates.release,
        ),
        opts=on_nodes,
    )

    costs = platform.estimates(
        settings,
        platform.inventory(
            base,
            node_pools=(platform.node_pool(config, sizes.desired, group="workloads"),),
            rds_instances=(cost.RdsInstance(production.db_instance_class, production.db_storage_gib),),
            s3_gb=EXPECTED_TELEMETRY_GB,
            # Loki, Tempo and Mimir's ingester keep their write-ahead logs on claims.
            volume_gib=platform.claimed_gib(mlflow.spec, agents.qdrant) + 3 * lgtm_values.WAL_GIB,
        ),
    )
    return ProductionPhase(
        base=platform.PlatformPhase(
            network=base.network,
            cluster=cluster,
            bucket=base.bucket,
            gateway=gateway,
            mlflow=mlflow,
            estimate=costs.running,
            after_quickstop=costs.after_quickstop,
            not_included=costs.not_included,
        ),
        production=production,
        gateway=gateway,
        mlflow=mlflow,
        database=database,
        agents=agents,
        lgtm=lgtm,
        serving=serving,
        load_balancer=gateway.load_balancer_url(),
    )
