"""Reads the Docker resources of a mocked run the way `docker inspect` would show them."""

from __future__ import annotations

from dataclasses import dataclass

from tests.harness import ProgramRun, Registered

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
PORT_LABEL = "llm-infra-lab.port."


@dataclass(frozen=True)
class Service:
    """A long-running container with the image it was pulled from."""

    container: Registered
    image: str

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def labels(self) -> dict[str, str]:
        return {item["label"]: item["value"] for item in self.container.get("labels", [])}

    @property
    def listening_ports(self) -> dict[str, int]:
        return {k.removeprefix(PORT_LABEL): int(v) for k, v in self.labels.items() if k.startswith(PORT_LABEL)}

    @property
    def aliases(self) -> list[str]:
        return [alias for net in self.container["networksAdvanced"] for alias in net.get("aliases", [])]

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.container.get("envs", []))

    def upload(self, path: str) -> str:
        matches = [u["content"] for u in self.container.get("uploads", []) if u["file"] == path]
        assert matches, f"{self.name} has no upload at {path}"
        return matches[0]

    def uploads_under(self, directory: str) -> dict[str, str]:
        return {u["file"]: u["content"] for u in self.container.get("uploads", []) if u["file"].startswith(directory)}


def services(run: ProgramRun) -> dict[str, Service]:
    """Long-running containers by name; one-shot init containers are left out."""
    # The mocks give every image the id sha256:<resource name>; containers run it by id.
    images = {f"sha256:{r.name}": r["name"] for r in run.of_type(REMOTE_IMAGE)}
    return {
        c.name: Service(container=c, image=images[c["image"]]) for c in run.of_type(CONTAINER) if c.get("mustRun", True)
    }


def one_shot_containers(run: ProgramRun) -> list[Registered]:
    return [c for c in run.of_type(CONTAINER) if not c.get("mustRun", True)]


def endpoints(run: ProgramRun) -> dict[str, set[int]]:
    """Every host name a peer can dial on the lab network, with the ports listening there."""
    result: dict[str, set[int]] = {}
    for service in services(run).values():
        for alias in service.aliases:
            result.setdefault(alias, set()).update(service.listening_ports.values())
    return result
