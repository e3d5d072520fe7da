"""MLflow and its artifact store, MinIO, in the `mlops-system` namespace of the local cluster."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.gateway.traefik_gateway import TraefikGateway
from components.mlops import DVC_PREFIX
from components.mlops.minio import ARTIFACT_BUCKET, ROOT_USER, minio_service
from components.mlops.mlflow import ENSURE_BUCKET, mlflow_service
from components.runtime.kubernetes_service import (
    KubernetesService,
    KubernetesServiceArgs,
    KubernetesTarget,
    Pods,
    from_pods,
    to_service,
)

CREDENTIALS_IN_ENV = "reads its credentials from the environment only"


@dataclass
class MlopsOnMinikubeArgs:
    target: KubernetesTarget
    gateway: TraefikGateway


class MlopsOnMinikube(pulumi.ComponentResource):
    """MinIO with a generated root password, MLflow on SQLite with its artifacts in MinIO.

    The password is protected with the data: MinIO keeps the first one it started with.
    MLflow, the MinIO console and the S3 API (for DVC) are routed through the gateway.
    """

    def __init__(self, name: str, args: MlopsOnMinikubeArgs, opts: pulumi.ResourceOptions | None = None):
        # The type token predates the class's name: changing it would change its children's URNs, protected claims'.
        super().__init__("llm-infra-lab:mlops:MlopsOnKubernetes", name, None, opts)
        target, gateway = args.target, args.gateway
        self.root_password = random.RandomPassword(
            "minio-root-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=self, **target.data_protection),
        )
        password = pulumi.Output.secret(self.root_password.result)
        self.minio = minio_service(target.name, password)
        self.mlflow = mlflow_service(
            namespace=target.name,
            public_host=gateway.host("mlflow"),
            backend_store_uri=None,
            artifact_bucket=ARTIFACT_BUCKET,
            s3_env={
                "MLFLOW_S3_ENDPOINT_URL": self.minio.url("s3"),
                "AWS_ACCESS_KEY_ID": ROOT_USER,
                "AWS_DEFAULT_REGION": "us-east-1",
            },
            s3_secret_env={"AWS_SECRET_ACCESS_KEY": password},
        )
        mlflow_pods = Pods(target.name, self.mlflow.name)
        child = pulumi.ResourceOptions(parent=self)
        self.services = {
            self.minio.name: KubernetesService(
                self.minio.name,
                KubernetesServiceArgs(
                    spec=self.minio,
                    target=target,
                    ingress=(
                        from_pods(mlflow_pods, self.minio, "s3"),
                        from_pods(gateway.pods, self.minio, "s3"),
                        from_pods(gateway.pods, self.minio, "console"),
                    ),
                    checkov_skips={"CKV_K8S_35": f"MinIO {CREDENTIALS_IN_ENV}"},
                ),
                opts=child,
            ),
            self.mlflow.name: KubernetesService(
                self.mlflow.name,
                KubernetesServiceArgs(
                    spec=self.mlflow,
                    target=target,
                    ingress=(from_pods(gateway.pods, self.mlflow, "http"),),
                    egress=(to_service(self.minio, "s3"),),
                    init_args=("python", "-c", ENSURE_BUCKET),
                    checkov_skips={"CKV_K8S_35": f"boto3 {CREDENTIALS_IN_ENV}"},
                ),
                opts=child,
            ),
        }
        self.routes = [
            gateway.route("mlflow", self.mlflow, "http", parent=self),
            gateway.route("minio-console", self.minio, "console", parent=self),
            gateway.route("minio", self.minio, "s3", parent=self),
        ]
        self.minio_user = ROOT_USER
        self.minio_password = password
        self.mlflow_url = gateway.url("mlflow")
        self.console_url = gateway.url("minio-console")
        self.s3_endpoint = gateway.url("minio")
        self.dvc_remote = f"s3://{ARTIFACT_BUCKET}/{DVC_PREFIX}"
        self.register_outputs({"s3Endpoint": self.s3_endpoint, "dvcRemote": self.dvc_remote})
