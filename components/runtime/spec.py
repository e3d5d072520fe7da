"""A service described once, as data, so every runtime renders the same thing.

A `ServiceSpec` says what a program needs (image, ports, config files, environment, health
check, memory, data directories); the Docker and Kubernetes renderers decide how. Wiring
between services goes through `url`/`address`, so a consumer's config is derived from the
producer's spec instead of a hand-typed host and port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import yaml


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    build_context: str | None = None
    """Directory with a Dockerfile when the lab builds the image itself; None to pull it."""

    def __post_init__(self) -> None:
        if not self.tag or self.tag == "latest":
            raise ValueError(f"image {self.repository} needs a pinned tag, got {self.tag!r}")

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: str = "tcp"
    published: bool = False
    """Reachable from the host (Docker) or through the gateway (Kubernetes)."""


@dataclass(frozen=True)
class ConfigFile:
    path: str
    content: str


class _PlainDumper(yaml.SafeDumper):
    """Writes a mapping used twice out twice: no `&id001` anchors and `*id001` aliases in a config."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def to_yaml(data: object, *, sort_keys: bool = False, width: int = 80) -> str:
    """YAML for a program or a chart to read, in the order given."""
    return yaml.dump(data, Dumper=_PlainDumper, sort_keys=sort_keys, width=width)


@dataclass(frozen=True)
class DataVolume:
    """A directory whose contents must outlive the container."""

    name: str
    mount_path: str
    size_gib: int = 1
    """What a Kubernetes claim requests; a Docker volume grows with its contents."""


@dataclass(frozen=True)
class HealthCheck:
    """An HTTP readiness endpoint, and the command that probes it from inside the image.

    Kubernetes probes the endpoint directly; Docker can only run a command inside the
    container, and what that command may be depends on the tools the image ships. `command`
    is None only for images that ship nothing able to probe (distroless, no health flag).
    """

    port: str
    path: str
    command: tuple[str, ...] | None
    start_period_seconds: int = 30


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    image: Image
    ports: tuple[Port, ...]
    memory_mib: int
    health: HealthCheck
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    config_files: tuple[ConfigFile, ...] = ()
    volumes: tuple[DataVolume, ...] = ()
    user: str | None = None
    """uid:gid the program runs as; data volumes are handed to it before it starts."""
    read_only_root: bool = False
    scratch_paths: tuple[str, ...] = ()
    """Writable, throwaway directories for a program on a read-only root filesystem."""
    cpu_millis: int = 100
    """CPU the program needs when busy; Kubernetes requests it (Docker shares the host's CPUs)."""
    namespace: str | None = None
    """The Kubernetes namespace it runs in; peers in other namespaces reach it as <name>.<namespace>."""

    def __post_init__(self) -> None:
        names = [p.name for p in self.ports]
        if len(set(names)) != len(names):
            raise ValueError(f"service {self.name} has duplicate port names: {names}")
        self.port(self.health.port)
        if self.memory_mib <= 0 or self.cpu_millis <= 0:
            raise ValueError(f"service {self.name} needs a positive memory limit and CPU request")

    @property
    def uid(self) -> int | None:
        return int(self.user.split(":")[0]) if self.user else None

    def port(self, name: str) -> Port:
        for port in self.ports:
            if port.name == name:
                return port
        raise KeyError(f"service {self.name} has no port named {name!r}")

    def address(self, port_name: str) -> str:
        """host:port of this service as its peers reach it: on the same network, or across namespaces."""
        host = f"{self.name}.{self.namespace}" if self.namespace else self.name
        return f"{host}:{self.port(port_name).number}"

    def url(self, port_name: str, path: str = "", scheme: str = "http") -> str:
        return f"{scheme}://{self.address(port_name)}{path}"


def data_options(retain: bool) -> dict[str, bool]:
    """Resource options for what holds data, or is bound to it: protected, and kept on delete."""
    return {"protect": retain, "retain_on_delete": retain}


def bash_http_probe(port: int, path: str) -> tuple[str, ...]:
    """An HTTP GET with bash's /dev/tcp, for images that ship bash but neither curl nor wget."""
    return (
        "bash",
        "-c",
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
        f"printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && "
        "head -n1 <&3 | grep -q ' 200 '",
    )


def python_http_probe(port: int, path: str) -> tuple[str, ...]:
    """An HTTP GET with the image's own Python, for slim Python images without curl."""
    url = f"http://127.0.0.1:{port}{path}"
    return ("python", "-c", f"import urllib.request; urllib.request.urlopen('{url}', timeout=3)")


def go_memory_limit(memory_mib: int) -> str:
    """GOMEMLIMIT at 80% of the container limit: the Go GC works harder before the OOM killer acts."""
    return f"{memory_mib * 4 // 5}MiB"
