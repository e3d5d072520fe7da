"""Phase `platform` (stack dev): a cost-aware ML platform on AWS.

A VPC without NAT (nodes in public subnets), EKS with a spot node group, the artifact bucket
for DVC and MLflow, and MLflow on the cluster reaching the bucket through IRSA, behind the
same Traefik Gateway as the local cluster on one network load balancer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import cost
from components.aws.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.aws.eks import ADDONS, EksCluster, EksClusterArgs
from components.aws.load_balancer_controller import (
    LOAD_BALANCER_CLASS,
    LoadBalancerController,
    LoadBalancerControllerArgs,
)
from components.aws.load_balancer_firewall import LoadBalancerFirewall, LoadBalancerFirewallArgs
from components.aws.network import Network, NetworkArgs
from components.aws.postgres import PostgresDatabase
from components.gateway.traefik_gateway import (
    GatewayTls,
    LoadBalancer,
    TraefikGateway,
    TraefikGatewayArgs,
)
from components.mlops import DVC_PREFIX
from components.mlops.mlflow_eks import MlflowOnEks, MlflowOnEksArgs
from components.runtime.kubernetes_service import INTERNET, KubernetesTarget
from components.runtime.spec import ServiceSpec
from stacks import namespaces
from stacks.namespaces import lab_namespace
from stacks.settings import AwsSettings, Settings

KUBERNETES_VERSION = "1.36"
"""In EKS standard support until 2 August 2027 (1.35's ends on 27 March 2027), the newest minor with a
Cluster Autoscaler release to match. The cluster's support policy is STANDARD: at the end of standard
support EKS upgrades it to the next minor rather than bill extended support (README, "End of support")."""
STORAGE_CLASS = "gp3-retain"
HTTP_PORT = 80
HTTPS_PORT = 443
EXPECTED_ARTIFACT_GB = 5


@dataclass
class PlatformPhase:
    base: Foundation
    gateway: TraefikGateway
    mlflow: MlflowOnEks
    costs: Estimates

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        bucket = self.base.bucket.bucket_name
        costs = self.costs
        return {
            "kubeconfig": self.base.cluster.kubeconfig,
            "clusterName": self.base.cluster.name,
            "artifactBucket": bucket,
            "mlflowUrl": self.mlflow.url,
            "mlflowUsername": self.mlflow.admin_user,
            "mlflowPassword": self.mlflow.admin_password,
            "dvcRemoteCommand": pulumi.Output.concat("dvc remote add -d lab s3://", bucket, f"/{DVC_PREFIX}"),
            "estimatedHourlyCostUsd": round(costs.running.hourly_usd, 4),
            "estimatedMonthlyCostUsd": round(costs.running.monthly_usd, 2),
            "costBreakdown": breakdown(costs.running),
            "costNotIncluded": costs.not_included,
            "quickstopHourlyCostUsd": round(costs.after_quickstop.hourly_usd, 4),
            "quickstopCostBreakdown": breakdown(costs.after_quickstop),
        }


@dataclass(frozen=True)
class PlatformOptions:
    """What a later phase changes in the platform it builds on; the defaults are phase platform."""

    autoscaled_nodes: bool = False
    """A cluster autoscaler sizes the node groups: `pulumi up` leaves their size alone."""
    domain: str | None = None
    tls: GatewayTls | None = None
    mlflow_database: Callable[[Foundation], PostgresDatabase] | None = None
    """MLflow's backend store, made on the foundation; None keeps its runs in SQLite on its claim."""


def breakdown(estimate: cost.CostEstimate) -> dict[str, float]:
    return {line.item: round(line.hourly_usd, 4) for line in estimate.lines}


@dataclass(frozen=True)
class Estimates:
    running: cost.CostEstimate
    after_quickstop: cost.CostEstimate
    not_included: dict[str, str]


def estimates(settings: Settings, inventory: cost.CostInventory) -> Estimates:
    """The stack's cost while it runs, after a quickstop, and what the figures leave out."""
    after = cost.after_quickstop(inventory, data_retained=settings.retain_data)
    return Estimates(cost.estimate(inventory), cost.estimate(after), cost.not_included(inventory))


@dataclass
class Foundation:
    """What everything on AWS stands on: the network, the cluster, the artifact bucket and the in-cluster basics."""

    settings: Settings
    config: AwsSettings
    cloud: aws.Provider
    network: Network
    cluster: EksCluster
    account: str
    bucket_name: str
    bucket: ArtifactBucket
    on_cluster: pulumi.ResourceOptions
    storage: k8s.storage.v1.StorageClass
    gateway_namespace: KubernetesTarget
    mlops_namespace: KubernetesTarget
    load_balancer_controller: LoadBalancerController

    @property
    def on_cloud(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.cloud)

    def retained(self, target: KubernetesTarget) -> KubernetesTarget:
        """`target` with claims on the StorageClass whose volumes outlive them."""
        return dataclasses.replace(target, storage_class=STORAGE_CLASS)

    def after_storage(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions.merge(self.on_cluster, pulumi.ResourceOptions(depends_on=[self.storage]))


def build(settings: Settings, options: PlatformOptions | None = None) -> PlatformPhase:
    """The network, the cluster and the artifact bucket, the gateway and MLflow: what every AWS phase has."""
    options = options or PlatformOptions()
    base = foundation(settings, autoscaled_nodes=options.autoscaled_nodes)
    gateway = traefik_gateway(base, domain=options.domain, tls=options.tls)
    database = options.mlflow_database(base) if options.mlflow_database else None
    mlflow = mlflow_on_eks(base, gateway, database=database)
    costs = estimates(settings, inventory(base, volume_gib=claimed_gib(mlflow.spec)))
    return PlatformPhase(base=base, gateway=gateway, mlflow=mlflow, costs=costs)


def foundation(settings: Settings, *, autoscaled_nodes: bool = False) -> Foundation:
    config = settings.aws
    assert config is not None, "the AWS phases run on the dev stack"
    cloud = aws.Provider(
        "aws",
        region=config.region,
        default_tags={"tags": {"project": "llm-infra-lab", "stack": settings.stack}},
    )
    on_cloud = pulumi.ResourceOptions(provider=cloud)
    name = settings.name_prefix
    network = Network(
        "network",
        NetworkArgs(
            name_prefix=name,
            cidr=config.vpc_cidr,
            az_count=config.availability_zones,
            nat_gateway=config.nat_gateway,
            cluster_name=name,
        ),
        opts=on_cloud,
    )
    cluster = EksCluster(
        "eks",
        EksClusterArgs(
            name=name,
            kubernetes_version=KUBERNETES_VERSION,
            subnet_ids=network.public_subnet_ids,
            endpoint_public_access_cidrs=config.api_allowed_cidrs,
            admin_principal_arn=config.cluster_admin_arn,
            node_instance_type=config.node_instance_type,
            node_capacity_type=config.node_capacity_type,
            node_min=config.node_min,
            node_desired=config.node_desired,
            node_max=config.node_max,
            node_disk_gib=config.node_disk_gib,
            addon_versions=addon_versions(cloud, ADDONS),
            autoscaled=autoscaled_nodes,
            retain_logs=settings.retain_data,
        ),
        opts=on_cloud,
    )
    # A name people can type in `dvc remote add`, unique per account and region.
    account = aws.get_caller_identity(opts=pulumi.InvokeOptions(provider=cloud)).account_id
    bucket_name = f"{name}-artifacts-{account}-{config.region}"
    bucket = ArtifactBucket(
        "artifacts",
        ArtifactBucketArgs(name_prefix=f"{name}-artifacts", retain=settings.retain_data, bucket_name=bucket_name),
        opts=on_cloud,
    )

    # Everything on the cluster waits for nodes, DNS and the volume driver (a Helm release times out
    # on a cluster without nodes), and is deleted before them.
    on_cluster = pulumi.ResourceOptions(
        provider=k8s.Provider(
            "eks",
            kubeconfig=cluster.kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(depends_on=cluster.workloads_ready),
        )
    )
    storage = k8s.storage.v1.StorageClass(
        STORAGE_CLASS,
        metadata={"name": STORAGE_CLASS},
        provisioner="ebs.csi.aws.com",
        parameters={"type": "gp3", "encrypted": "true"},
        # The EBS volume outlives its claim, so the cluster can go (quickstop) while the data stays.
        reclaim_policy="Retain" if settings.retain_data else "Delete",
        volume_binding_mode="WaitForFirstConsumer",
        allow_volume_expansion=True,
        opts=on_cluster,
    )
    # Nothing in the cluster is protected: a protected object would keep the cluster from a
    # quickstop. Claims keep their data through the StorageClass instead.
    return Foundation(
        settings=settings,
        config=config,
        cloud=cloud,
        network=network,
        cluster=cluster,
        account=account,
        bucket_name=bucket_name,
        bucket=bucket,
        on_cluster=on_cluster,
        storage=storage,
        gateway_namespace=lab_namespace(namespaces.GATEWAY, on_cluster),
        mlops_namespace=lab_namespace(namespaces.MLOPS, on_cluster, routed=True),
        load_balancer_controller=LoadBalancerController(
            "aws-load-balancer-controller",
            LoadBalancerControllerArgs(
                cluster_name=cluster.name,
                region=config.region,
                vpc_id=network.vpc_id,
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                role_name=f"{name}-lb-controller",
            ),
            opts=on_cluster,
        ),
    )


def traefik_gateway(base: Foundation, *, domain: str | None, tls: GatewayTls | None) -> TraefikGateway:
    """The same Traefik gateway as on minikube, behind one network load balancer that admits the operator.

    With TLS, port 443 admits the same CIDRs, and port 80 admits everyone: Let's Encrypt proves each host over
    HTTP-01 from addresses it does not publish, and port 80 serves nothing else than the redirect to HTTPS.
    """
    cidrs = list(base.config.gateway_allowed_cidrs)
    admitted = {HTTP_PORT: cidrs}
    if tls is not None:
        admitted = {HTTP_PORT: [*cidrs, INTERNET.cidr], HTTPS_PORT: cidrs}
    firewall = LoadBalancerFirewall(
        "gateway-firewall",
        LoadBalancerFirewallArgs(
            name_prefix=f"{base.settings.name_prefix}-gateway",
            vpc_id=base.network.vpc_id,
            vpc_cidr=base.config.vpc_cidr,
            admitted=admitted,
        ),
        opts=base.on_cloud,
    )
    return TraefikGateway(
        "gateway",
        TraefikGatewayArgs(
            target=base.gateway_namespace,
            domain=domain,
            load_balancer=LoadBalancer(
                class_name=LOAD_BALANCER_CLASS,
                annotations={
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type": "ip",
                    "service.beta.kubernetes.io/aws-load-balancer-security-groups": firewall.security_group_id,
                    "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules": "true",
                },
                controller=base.load_balancer_controller.release,
            ),
            tls=tls,
        ),
        opts=base.on_cluster,
    )


def mlflow_on_eks(base: Foundation, gateway: TraefikGateway, *, database: PostgresDatabase | None) -> MlflowOnEks:
    return MlflowOnEks(
        "mlflow",
        MlflowOnEksArgs(
            target=base.retained(base.mlops_namespace),
            gateway=gateway,
            bucket=base.bucket,
            bucket_name=base.bucket_name,
            oidc_provider_arn=base.cluster.oidc_provider_arn,
            oidc_issuer=base.cluster.oidc_issuer,
            region=base.config.region,
            backend_store_uri=database.uri if database else None,
            database_network=base.config.vpc_cidr if database else None,
        ),
        opts=base.after_storage(),
    )


def inventory(
    base: Foundation,
    *,
    node_pools: tuple[cost.NodePool, ...] = (),
    rds_instances: tuple[cost.RdsInstance, ...] = (),
    s3_gb: float = 0,
    volume_gib: float = 0,
) -> cost.CostInventory:
    """What the platform phase pays for, plus what a later phase adds."""
    config = base.config
    pools = (node_pool(config, config.node_desired), *node_pools)
    nat = base.network.nat_gateway_count
    return cost.CostInventory(
        region=config.region,
        eks_control_planes=1,
        node_pools=pools,
        nat_gateways=nat,
        network_load_balancers=1,
        # Every node sits in a public subnet; the NLB has an address per zone.
        public_ipv4_addresses=sum(pool.count for pool in pools) + config.availability_zones + nat,
        rds_instances=rds_instances,
        s3_gb=EXPECTED_ARTIFACT_GB + s3_gb,
        volume_gib=volume_gib,
        kms_keys=1,
    )


def node_pool(config: AwsSettings, count: int, group: str | None = None) -> cost.NodePool:
    """A node group as the cost model counts it."""
    return cost.NodePool(
        instance_type=config.node_instance_type,
        capacity_type=config.node_capacity_type,
        count=count,
        disk_gib=config.node_disk_gib,
        group=group,
    )


def claimed_gib(*specs: ServiceSpec) -> int:
    return sum(volume.size_gib for spec in specs for volume in spec.volumes)


def addon_versions(provider: aws.Provider, addons: tuple[str, ...]) -> dict[str, pulumi.Output[str]]:
    """AWS's default build of each add-on for KUBERNETES_VERSION (ADR 0010)."""
    return {
        addon: aws.eks.get_addon_version_output(
            addon_name=addon,
            kubernetes_version=KUBERNETES_VERSION,
            most_recent=False,
            opts=pulumi.InvokeOptions(provider=provider),
        ).version
        for addon in addons
    }
