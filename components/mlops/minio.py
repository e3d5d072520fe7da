"""The lab's S3-compatible object store: MinIO's API and console, served by Silo.

MinIO's community edition was archived in April 2026 and its images withdrawn; Silo is the
maintained fork with the same S3 API, on-disk format, environment variables and embedded
console (ADR 0008). Clients (MLflow, DVC, boto3) see MinIO.
"""

from __future__ import annotations

import pulumi

from components.runtime.spec import DataVolume, HealthCheck, Image, Port, ServiceSpec

IMAGE = Image("pgsty/silo", "RELEASE.2026-09-16T00-00-00Z")
NAME = "minio"
API_PORT = 9000
CONSOLE_PORT = 9001
DATA_PATH = "/data"
MEMORY_MIB = 384
ROOT_USER = "lab-admin"
ARTIFACT_BUCKET = "lab-artifacts"
"""One bucket, like the AWS phase's: `mlflow/` for MLflow's artifacts, `dvc/` for the DVC remote."""


def minio_service(namespace: str, root_password: pulumi.Input[str]) -> ServiceSpec:
    return ServiceSpec(
        name=NAME,
        image=IMAGE,
        ports=(Port("s3", API_PORT), Port("console", CONSOLE_PORT)),
        memory_mib=MEMORY_MIB,
        args=("server", DATA_PATH, "--address", f":{API_PORT}", "--console-address", f":{CONSOLE_PORT}"),
        env={"MINIO_ROOT_USER": ROOT_USER, "MINIO_BROWSER_LOGIN_ANIMATION": "off"},
        secret_env={"MINIO_ROOT_PASSWORD": root_password},
        volumes=(DataVolume("data", DATA_PATH, size_gib=10),),
        # The image sets no user; any uid works once the claim is group-writable.
        user="10001:10001",
        read_only_root=True,
        scratch_paths=("/tmp",),
        health=HealthCheck(
            port="s3",
            path="/minio/health/ready",
            command=("curl", "-fsS", f"http://127.0.0.1:{API_PORT}/minio/health/live"),
        ),
        namespace=namespace,
    )
