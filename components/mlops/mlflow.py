"""MLflow's tracking server: runs and models in a database, artifacts in an S3 bucket.

The server proxies artifacts (`--serve-artifacts`), so clients need only its URL, never
credentials for the bucket. Since 3.5 it also refuses requests whose Host header it does not
know (DNS-rebinding protection): behind a gateway, the route's host must be allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi

from components.runtime.spec import (
    ConfigFile,
    DataVolume,
    HealthCheck,
    Image,
    Port,
    ServiceSpec,
    python_http_probe,
)

# The -full variant carries boto3 (S3 artifacts), the PostgreSQL drivers (phase production) and the
# basic-auth app's Flask-WTF (mlflow[auth]).
IMAGE = Image("ghcr.io/mlflow/mlflow", "v3.18.0-full")
NAME = "mlflow"
PORT = 5000
DB_PATH = "/mlflow/db"
MEMORY_MIB = 768
ARTIFACT_PREFIX = "mlflow"
ADMIN_USER = "admin"
AUTH_CONFIG_PATH = "/mlflow/auth/basic_auth.ini"


@dataclass(frozen=True)
class MlflowAuth:
    """MLflow's basic-auth app: every request but /health needs a user and password.

    The admin is created with this password on the first start, in a user database on the claim; the
    password is read only then. No one else has any permission until the admin grants it.
    """

    admin_password: pulumi.Input[str]
    secret_key: pulumi.Input[str]
    """Signs the UI's session cookies and CSRF tokens."""

    @staticmethod
    def config() -> str:
        return (
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = sqlite:///{DB_PATH}/basic-auth.db\n"
            f"admin_username = {ADMIN_USER}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )


ENSURE_BUCKET = (Path(__file__).parent / "programs" / "ensure_bucket.py").read_text()
"""The init container's program: the artifact bucket exists, or is created, once the store answers."""


def allowed_hosts(public_host: str, namespace: str) -> str:
    """The gateway's host name, and the Service's names for clients inside the cluster."""
    service = [NAME, f"{NAME}.{namespace}", f"{NAME}.{namespace}.svc", f"{NAME}.{namespace}.svc.cluster.local"]
    return ",".join(pattern for host in (public_host, *service) for pattern in (host, f"{host}:*"))


def mlflow_service(
    *,
    namespace: str,
    public_host: str,
    backend_store_uri: pulumi.Input[str] | None,
    artifact_bucket: str,
    s3_env: Mapping[str, str],
    s3_secret_env: Mapping[str, pulumi.Input[str]],
    auth: MlflowAuth | None = None,
) -> ServiceSpec:
    """MLflow with `backend_store_uri` (None: SQLite on the retained volume), artifacts in the bucket.

    `s3_env`/`s3_secret_env` tell boto3 where the bucket is and who asks: an endpoint and keys for
    an S3-compatible store, nothing on AWS, where the pod's IRSA role answers. `auth` None serves anyone
    who reaches the server (minikube, behind `kubectl port-forward`).
    """
    sqlite = backend_store_uri is None
    secret_env = dict(s3_secret_env)
    if not sqlite:
        secret_env["MLFLOW_BACKEND_STORE_URI"] = backend_store_uri
    if auth is not None:
        secret_env["MLFLOW_AUTH_ADMIN_PASSWORD"] = auth.admin_password
        secret_env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = auth.secret_key
    return ServiceSpec(
        name=NAME,
        image=IMAGE,
        ports=(Port("http", PORT),),
        memory_mib=MEMORY_MIB,
        cpu_millis=200,
        args=(
            "mlflow",
            "server",
            *(("--app-name=basic-auth",) if auth else ()),
            "--host=0.0.0.0",
            f"--port={PORT}",
            "--workers=1",
            *((f"--backend-store-uri=sqlite:///{DB_PATH}/mlflow.db",) if sqlite else ()),
            f"--artifacts-destination=s3://{artifact_bucket}/{ARTIFACT_PREFIX}",
            "--serve-artifacts",
            f"--allowed-hosts={allowed_hosts(public_host, namespace)}",
            f"--cors-allowed-origins=http://{public_host},http://{public_host}:*,https://{public_host}",
        ),
        env={
            **s3_env,
            "ARTIFACT_BUCKET": artifact_bucket,
            "HOME": "/tmp",
            **({"MLFLOW_AUTH_CONFIG_PATH": AUTH_CONFIG_PATH} if auth else {}),
        },
        secret_env=secret_env,
        config_files=(ConfigFile(AUTH_CONFIG_PATH, MlflowAuth.config()),) if auth else (),
        # Kept when a PostgreSQL URI takes over: the claim holds the earlier runs' SQLite file.
        volumes=(DataVolume("db", DB_PATH, size_gib=1),),
        user="10001:10001",
        read_only_root=True,
        scratch_paths=("/tmp",),
        health=HealthCheck(
            port="http", path="/health", command=python_http_probe(PORT, "/health"), start_period_seconds=90
        ),
        namespace=namespace,
    )
