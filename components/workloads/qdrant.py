"""Qdrant, the vector database the agents retrieve review guidelines from."""

from __future__ import annotations

from components.runtime.spec import DataVolume, HealthCheck, Image, Port, ServiceSpec, bash_http_probe

# The unprivileged build runs as uid 1000 instead of root.
IMAGE = Image("qdrant/qdrant", "v1.18.2-unprivileged")
HTTP_PORT = 6333
GRPC_PORT = 6334
STORAGE_PATH = "/qdrant/storage"
# Qdrant marks its first start with a file; on a read-only root it goes to a scratch directory.
INIT_PATH = "/qdrant/init"
MEMORY_MIB = 320


def qdrant_service() -> ServiceSpec:
    return ServiceSpec(
        name="qdrant",
        image=IMAGE,
        ports=(Port("http", HTTP_PORT), Port("grpc", GRPC_PORT)),
        memory_mib=MEMORY_MIB,
        env={
            "QDRANT__SERVICE__HTTP_PORT": str(HTTP_PORT),
            "QDRANT__SERVICE__GRPC_PORT": str(GRPC_PORT),
            "QDRANT__STORAGE__STORAGE_PATH": STORAGE_PATH,
            "QDRANT__STORAGE__SNAPSHOTS_PATH": f"{STORAGE_PATH}/snapshots",
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT_INIT_FILE_PATH": f"{INIT_PATH}/.qdrant-initialized",
        },
        volumes=(DataVolume("storage", STORAGE_PATH, size_gib=2),),
        user="1000:1000",
        read_only_root=True,
        scratch_paths=(INIT_PATH,),
        # No curl or wget in the image; bash is there.
        health=HealthCheck(port="http", path="/readyz", command=bash_http_probe(HTTP_PORT, "/readyz")),
    )
