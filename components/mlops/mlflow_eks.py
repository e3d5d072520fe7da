"""MLflow on EKS: SQLite on a retained EBS claim, artifacts in the S3 bucket through IRSA.

The pod's service account is bound to an IAM role that may read and write only the bucket's
`mlflow/` prefix; boto3 in the pod exchanges the projected token for that role's temporary
credentials, so no key exists anywhere. Clients reach MLflow through the gateway's load
balancer, log in as its admin (MLflow's basic-auth app), and upload artifacts through the server
(`--serve-artifacts`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.aws.artifact_bucket import ArtifactBucket
from components.aws.irsa import SERVICE_ACCOUNT_ANNOTATION, IrsaRole, IrsaRoleArgs, bucket_access_policy
from components.gateway.traefik_gateway import TraefikGateway
from components.mlops.mlflow import ADMIN_USER, ARTIFACT_PREFIX, NAME, MlflowAuth, mlflow_service
from components.runtime.kubernetes_service import (
    INTERNET,
    Allow,
    IpBlock,
    KubernetesService,
    KubernetesServiceArgs,
    KubernetesTarget,
    from_pods,
    labels_for,
)

HTTPS_PORT = 443
"""S3 and STS, reached over the internet from public subnets (no NAT, no VPC endpoint to pay for)."""
POSTGRES_PORT = 5432


@dataclass
class MlflowOnEksArgs:
    target: KubernetesTarget
    gateway: TraefikGateway
    bucket: ArtifactBucket
    bucket_name: str
    """The bucket's name, known before it exists (MLflow's arguments are plain text)."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    region: str
    backend_store_uri: pulumi.Input[str] | None = None
    """A PostgreSQL URI (secret) for runs and models; None keeps them in SQLite on the claim."""
    database_network: str | None = None
    """Where the database lives (the VPC's range), for the pod's egress; None without one."""


class MlflowOnEks(pulumi.ComponentResource):
    def __init__(self, name: str, args: MlflowOnEksArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:mlops:MlflowOnEks", name, None, opts)
        target = args.target
        child = pulumi.ResourceOptions(parent=self)
        self.role = IrsaRole(
            NAME,
            IrsaRoleArgs(
                name=f"{args.bucket_name[:24]}-mlflow",
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer=args.oidc_issuer,
                namespace=target.name,
                service_account=NAME,
                policy_json=bucket_access_policy(args.bucket.bucket_arn, prefix=ARTIFACT_PREFIX),
            ),
            opts=child,
        )
        self.service_account = k8s.core.v1.ServiceAccount(
            NAME,
            metadata={
                "name": NAME,
                "namespace": target.namespace.metadata.name,
                "labels": labels_for(NAME),
                "annotations": {SERVICE_ACCOUNT_ANNOTATION: self.role.role_arn},
            },
            automount_service_account_token=False,
            opts=child,
        )
        # Reached through a load balancer: nobody gets in without the admin's password.
        self.admin_user = ADMIN_USER
        self.admin_password = pulumi.Output.secret(
            random.RandomPassword(f"{name}-admin-password", length=32, special=False, opts=child).result
        )
        secret_key = pulumi.Output.secret(
            random.RandomPassword(f"{name}-secret-key", length=40, special=False, opts=child).result
        )
        self.spec = mlflow_service(
            namespace=target.name,
            # Clients arrive with the route's host name, or else with the load balancer's own.
            public_host=args.gateway.host(NAME) if args.gateway.domain else f"*.elb.{args.region}.amazonaws.com",
            backend_store_uri=args.backend_store_uri,
            artifact_bucket=args.bucket_name,
            s3_env={"AWS_DEFAULT_REGION": args.region, "AWS_STS_REGIONAL_ENDPOINTS": "regional"},
            s3_secret_env={},
            auth=MlflowAuth(admin_password=self.admin_password, secret_key=secret_key),
        )
        self.service = KubernetesService(
            NAME,
            KubernetesServiceArgs(
                spec=self.spec,
                target=target,
                ingress=(from_pods(args.gateway.pods, self.spec, "http"),),
                egress=(
                    Allow(INTERNET, HTTPS_PORT),
                    *((Allow(IpBlock(args.database_network), POSTGRES_PORT),) if args.database_network else ()),
                ),
                service_account=self.service_account.metadata.name,
                checkov_skips={
                    "CKV_K8S_38": "IRSA: the token is exchanged for the artifact bucket role's credentials",
                    "CKV_K8S_35": "MLflow reads its admin password and database URI from the environment only",
                },
            ),
            opts=child,
        )
        self.route = args.gateway.route(NAME, self.spec, "http", parent=self)
        self.url = args.gateway.url(NAME) if args.gateway.domain else args.gateway.load_balancer_url()
        self.register_outputs({"url": self.url})
