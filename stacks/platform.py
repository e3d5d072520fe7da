"""Phase `platform` (stack dev): a cost-aware ML platform on AWS.

A VPC without NAT (nodes in public subnets), EKS with a spot node group, the artifact bucket
for DVC and MLflow, and MLflow on the cluster reaching the bucket through IRSA, behind the
same Traefik Gateway as the local cluster on one network load balancer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws import cost
from components.aws.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.aws.eks import ADDONS, EksCluster, EksClusterArgs, deployer_principal_arn
from components.aws.network import Network, NetworkArgs
from components.gateway.traefik_gateway import ROUTES_LABEL, TraefikGateway, TraefikGatewayArgs
from components.mlops.mlflow_eks import MlflowOnEks, MlflowOnEksArgs
from components.mlops.mlops_kubernetes import DVC_PREFIX
from components.workloads.kubernetes_service import namespace
from stacks.settings import Settings

KUBERNETES_VERSION = "1.35"
"""In standard support until early 2027 (1.34's ends on 2 December 2026)."""
STORAGE_CLASS = "gp3-retain"
NLB_ANNOTATIONS = {
    # The in-tree AWS cloud provider's network load balancer: one per Service, no controller to run.
    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
}
EXPECTED_ARTIFACT_GB = 5


@dataclass
class PlatformPhase:
    network: Network
    cluster: EksCluster
    bucket: ArtifactBucket
    gateway: TraefikGateway
    mlflow: MlflowOnEks
    estimate: cost.CostEstimate

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        bucket = self.bucket.bucket_name
        return {
            "kubeconfig": self.cluster.kubeconfig,
            "clusterName": self.cluster.name,
            "artifactBucket": bucket,
            "mlflowUrl": self.mlflow.url,
            "dvcRemoteCommand": pulumi.Output.concat("dvc remote add -d lab s3://", bucket, f"/{DVC_PREFIX}"),
            "estimatedHourlyCostUsd": round(self.estimate.hourly_usd, 4),
            "estimatedMonthlyCostUsd": round(self.estimate.monthly_usd, 2),
            "costBreakdown": {line.item: round(line.hourly_usd, 4) for line in self.estimate.lines},
        }


def build(settings: Settings) -> PlatformPhase:
    config = settings.aws
    assert config is not None, "the platform phase runs on the dev stack"
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
            admin_principal_arn=deployer_principal_arn(cloud),
            node_instance_types=config.node_instance_types,
            node_capacity_type=config.node_capacity_type,
            node_min=config.node_min,
            node_desired=config.node_desired,
            node_max=config.node_max,
            node_disk_gib=config.node_disk_gib,
            addon_versions=addon_versions(cloud),
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
    gateway_ns = namespace("gateway-system", False, on_cluster)
    mlops_ns = namespace("mlops-system", False, on_cluster, **{ROUTES_LABEL: "true"})
    gateway = TraefikGateway(
        "gateway",
        TraefikGatewayArgs(
            target=gateway_ns, domain=None, service_type="LoadBalancer", service_annotations=NLB_ANNOTATIONS
        ),
        opts=on_cluster,
    )
    mlflow = MlflowOnEks(
        "mlflow",
        MlflowOnEksArgs(
            target=dataclasses.replace(mlops_ns, storage_class=STORAGE_CLASS),
            gateway=gateway,
            bucket=bucket,
            bucket_name=bucket_name,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer=cluster.oidc_issuer,
            region=config.region,
        ),
        opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=[storage])),
    )
    estimate = cost.estimate(
        cost.CostInventory(
            region=config.region,
            eks_control_planes=1,
            node_pools=(
                cost.NodePool(
                    instance_type=config.node_instance_types[0],
                    capacity_type=config.node_capacity_type,
                    count=config.node_desired,
                    disk_gib=config.node_disk_gib,
                ),
            ),
            nat_gateways=network.nat_gateway_count,
            network_load_balancers=1,
            public_ipv4_addresses=config.node_desired + config.availability_zones + network.nat_gateway_count,
            s3_gb=EXPECTED_ARTIFACT_GB,
            kms_keys=1,
        )
    )
    return PlatformPhase(
        network=network, cluster=cluster, bucket=bucket, gateway=gateway, mlflow=mlflow, estimate=estimate
    )


def addon_versions(provider: aws.Provider) -> dict[str, pulumi.Output[str]]:
    """AWS's default build of each add-on for KUBERNETES_VERSION (ADR 0010)."""
    return {
        addon: aws.eks.get_addon_version_output(
            addon_name=addon,
            kubernetes_version=KUBERNETES_VERSION,
            most_recent=False,
            opts=pulumi.InvokeOptions(provider=provider),
        ).version
        for addon in ADDONS
    }
