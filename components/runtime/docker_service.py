"""Renders a ServiceSpec as one Docker container on the lab network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.runtime.spec import Image, ServiceSpec, data_options

LABEL_PREFIX = "llm-infra-lab"
VOLUME_INIT_IMAGE = Image("busybox", "1.37.0")
VOLUME_INIT_MEMORY_MIB = 32


@dataclass(frozen=True)
class DockerTarget:
    """Where and how a phase's services run on the local engine."""

    network_name: pulumi.Input[str]
    name_prefix: str
    bind_address: str
    """Host address published ports listen on."""
    retain_data: bool

    @property
    def data_protection(self) -> dict[str, bool]:
        """Resource options for whatever holds data, or is bound to it (generated credentials)."""
        return data_options(self.retain_data)

    @property
    def host(self) -> str:
        """How the person at this machine reaches a published port."""
        return "localhost" if self.bind_address in ("127.0.0.1", "0.0.0.0") else self.bind_address


@dataclass
class DockerServiceArgs:
    spec: ServiceSpec
    target: DockerTarget
    image: docker.RemoteImage | None = None
    """An image built once for several services (see `build_image`); None pulls spec.image."""
    running: bool = True
    """False keeps only the data volumes: the service runs elsewhere now, its data stays here."""


def build_image(name: str, image: Image, opts: pulumi.ResourceOptions) -> docker.RemoteImage:
    """Builds a lab image from its context once, tagged with its pinned tag."""
    if image.build_context is None:
        raise ValueError(f"{image.ref} has no build context")
    return docker.RemoteImage(
        name,
        name=image.ref,
        keep_locally=True,
        build=docker.RemoteImageBuildArgs(context=image.build_context, tags=[image.ref]),
        opts=opts,
    )


class DockerService(pulumi.ComponentResource):
    """A pulled image, named volumes for its data, and the container.

    Volumes are separate resources, protected and retained on delete while the target keeps
    data: `pulumi destroy --exclude-protected`, or a phase that drops the container, leaves the
    data for the next `pulumi up` to pick up by name. For a non-root program a one-shot
    container first hands its volumes to its uid (a new named volume, or one left by an older
    image, may be owned by root), and the service is only created once that has succeeded.
    Containers carry their listening ports as labels: Docker only records published ports,
    and the wiring tests need every port a peer may dial.
    """

    def __init__(self, name: str, args: DockerServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:workloads:DockerService", name, None, opts)
        spec = args.spec
        child = pulumi.ResourceOptions(parent=self)
        self.volumes = [
            docker.Volume(
                f"{spec.name}-{volume.name}",
                name=f"{args.target.name_prefix}-{spec.name}-{volume.name}",
                labels=[docker.VolumeLabelArgs(label=f"{LABEL_PREFIX}.service", value=spec.name)],
                opts=pulumi.ResourceOptions(parent=self, **args.target.data_protection),
            )
            for volume in spec.volumes
        ]
        if not args.running:
            self.container = None
            self.register_outputs({"volumes": [volume.name for volume in self.volumes]})
            return

        if args.image is not None:
            image = args.image
        elif spec.image.build_context is None:
            image = docker.RemoteImage(spec.name, name=spec.image.ref, keep_locally=True, opts=child)
        else:
            raise ValueError(f"{spec.name}: pass the image built from {spec.image.build_context} in args.image")

        mounts = [
            docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data.mount_path)
            for volume, data in zip(self.volumes, spec.volumes, strict=True)
        ]
        labels = [docker.ContainerLabelArgs(label=f"{LABEL_PREFIX}.service", value=spec.name)] + [
            docker.ContainerLabelArgs(label=f"{LABEL_PREFIX}.port.{port.name}", value=str(port.number))
            for port in spec.ports
        ]
        if self.volumes and spec.uid not in (None, 0):
            owner = self._volume_owner(spec, args.target.name_prefix, mounts)
            labels.append(
                docker.ContainerLabelArgs(
                    label=f"{LABEL_PREFIX}.volumes-owned-by",
                    value=_succeeded(owner, f"{spec.name}-volume-owner", spec.user),
                )
            )

        plain_env = [f"{key}={value}" for key, value in sorted(spec.env.items())]
        secret_env = [
            pulumi.Output.secret(value).apply(lambda v, k=key: f"{k}={v}")
            for key, value in sorted(spec.secret_env.items())
        ]

        self.container = docker.Container(
            spec.name,
            name=f"{args.target.name_prefix}-{spec.name}",
            image=image.image_id,
            command=list(spec.args) or None,
            envs=plain_env + secret_env,
            user=spec.user,
            uploads=[docker.ContainerUploadArgs(file=f.path, content=f.content) for f in spec.config_files],
            volumes=mounts,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=args.target.network_name, aliases=[spec.name])
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=port.number, external=port.number, ip=args.target.bind_address, protocol=port.protocol
                )
                for port in spec.ports
                if port.published
            ],
            labels=labels,
            healthcheck=self._healthcheck(spec),
            read_only=spec.read_only_root or None,
            tmpfs={path: "rw,noexec,nosuid,size=64m" for path in spec.scratch_paths} or None,
            memory=spec.memory_mib,
            memory_swap=spec.memory_mib,
            restart="unless-stopped",
            security_opts=["no-new-privileges:true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            log_driver="json-file",
            log_opts={"max-size": "10m", "max-file": "3"},
            opts=child,
        )

        self.register_outputs({"container": self.container.name})

    @staticmethod
    def _healthcheck(spec: ServiceSpec) -> docker.ContainerHealthcheckArgs | None:
        if spec.health.command is None:
            return None
        return docker.ContainerHealthcheckArgs(
            tests=["CMD", *spec.health.command],
            interval="15s",
            timeout="5s",
            retries=5,
            start_period=f"{spec.health.start_period_seconds}s",
        )

    def _volume_owner(
        self, spec: ServiceSpec, name_prefix: str, mounts: list[docker.ContainerVolumeArgs]
    ) -> docker.Container:
        """Runs `chown -R uid:gid` over the service's volumes once, then exits."""
        image = docker.RemoteImage(
            f"{spec.name}-volume-owner",
            name=VOLUME_INIT_IMAGE.ref,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return docker.Container(
            f"{spec.name}-volume-owner",
            name=f"{name_prefix}-{spec.name}-volume-owner",
            image=image.image_id,
            command=["chown", "-R", spec.user, *(data.mount_path for data in spec.volumes)],
            volumes=mounts,
            network_mode="none",
            must_run=False,
            attach=True,
            logs=False,
            restart="no",
            memory=VOLUME_INIT_MEMORY_MIB,
            memory_swap=VOLUME_INIT_MEMORY_MIB,
            security_opts=["no-new-privileges:true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=["CHOWN", "DAC_READ_SEARCH"]),
            labels=[docker.ContainerLabelArgs(label=f"{LABEL_PREFIX}.service", value=spec.name)],
            opts=pulumi.ResourceOptions(parent=self),
        )


def _succeeded(one_shot: docker.Container, name: str, value: str) -> pulumi.Output[str]:
    """`value` once the one-shot container exited 0; a failure stops the deployment here.

    Docker's provider waits for an attached container but does not judge its exit code.
    """

    def check(exit_code: int | None) -> str:
        if exit_code != 0:
            raise pulumi.RunError(f"{name} exited with {exit_code}; see `docker logs <prefix>-{name}`")
        return value

    return one_shot.exit_code.apply(check)


def render_services(
    specs: tuple[ServiceSpec, ...],
    target: DockerTarget,
    parent: pulumi.Resource,
    built: docker.RemoteImage | None = None,
    running: bool = True,
) -> dict[str, DockerService]:
    """One DockerService per spec; specs whose image the lab builds run `built`."""
    return {
        spec.name: DockerService(
            spec.name,
            DockerServiceArgs(
                spec=spec, target=target, image=built if spec.image.build_context else None, running=running
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for spec in specs
    }
