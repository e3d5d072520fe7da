"""Renders a ServiceSpec as Kubernetes objects: the same definition the Docker runtime uses.

A spec with data volumes becomes a StatefulSet over claims Pulumi owns (protected and kept on
delete, like the Docker volumes), anything else a Deployment. Every pod runs as the spec's
non-root user on a read-only root filesystem with no capabilities, without a service-account
token unless it talks to the API, and behind a NetworkPolicy that admits exactly the
`Allow`s its component wires: nothing else in or out but DNS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.runtime import restricted
from components.runtime.spec import ServiceSpec, data_options

PART_OF = "llm-infra-lab"
NAME_LABEL = "app.kubernetes.io/name"
CONFIG_HASH_ANNOTATION = "llm-infra-lab/config-sha256"
SCRATCH_SIZE = "64Mi"
CPU_LIMIT_MILLIS = 1000
# Checks a pinned-tag workload cannot pass by design; each is skipped on the object that owns it.
PINNED_TAG_SKIPS = {
    "CKV_K8S_43": "images are pinned by version tag; the policy pack refuses latest and untagged images",
    "CKV_K8S_15": "IfNotPresent: a pinned tag never changes, and minikube runs images loaded from the host",
}
DNS_PORT = 53


def labels_for(name: str) -> dict[str, str]:
    return {NAME_LABEL: name, "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi"}


@dataclass(frozen=True)
class Pods:
    """Pods of one workload (`app` set) or of a whole namespace (`app` None)."""

    namespace: str
    app: str | None = None

    def peer(self) -> dict:
        peer: dict = {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": self.namespace}}}
        if self.app is not None:
            peer["pod_selector"] = {"match_labels": {NAME_LABEL: self.app}}
        return peer


@dataclass(frozen=True)
class IpBlock:
    """Addresses outside the cluster's pods: a host, the API server, the internet."""

    cidr: str
    excluded: tuple[str, ...] = ()

    def peer(self) -> dict:
        return {"ip_block": {"cidr": self.cidr, "except": list(self.excluded) or None}}


INTERNET = IpBlock("0.0.0.0/0")
"""Any address: the internet, and the peers outside the cluster a policy cannot name more closely."""


@dataclass(frozen=True)
class Allow:
    """One permitted connection: with `peer`, on TCP `port` (the server's port)."""

    peer: Pods | IpBlock
    port: int


def to_service(spec: ServiceSpec, port_name: str) -> Allow:
    """Egress from a client to `spec`'s port, derived from the spec the client's URL came from."""
    assert spec.namespace is not None, f"{spec.name} has no namespace"
    return Allow(Pods(spec.namespace, spec.name), spec.port(port_name).number)


def from_pods(pods: Pods, spec: ServiceSpec, port_name: str) -> Allow:
    """Ingress to `spec`'s port from `pods`."""
    return Allow(pods, spec.port(port_name).number)


@dataclass(frozen=True)
class KubernetesTarget:
    """A namespace of the cluster and how data is kept there."""

    namespace: k8s.core.v1.Namespace
    name: str
    retain_data: bool
    storage_class: str | None = None
    """None uses the cluster's default StorageClass."""

    @property
    def data_protection(self) -> dict[str, bool]:
        return data_options(self.retain_data)


def namespace(
    name: str, retain_data: bool, opts: pulumi.ResourceOptions, *, holds_data: bool = False, **labels: str
) -> KubernetesTarget:
    """A namespace with the restricted Pod Security Standard enforced: the renderer's pods meet it.

    Deleting a namespace deletes every claim in it, whatever the claims' own options: one that
    holds data is protected and kept on delete like the claims.
    """
    kept = data_options(retain_data) if holds_data else {}
    resource = k8s.core.v1.Namespace(
        name,
        metadata={
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": PART_OF,
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                **labels,
            },
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(**kept)),
    )
    return KubernetesTarget(namespace=resource, name=name, retain_data=retain_data)


@dataclass(frozen=True)
class Scaling:
    """Between `minimum` and `maximum` replicas, holding CPU near `cpu_percent` of the request.

    The HorizontalPodAutoscaler owns the replica count (the Deployment states none, so an update
    never resets it), replicas spread over nodes, and a drain or a spot reclaim takes at most one
    pod at a time: with two or more replicas the service stays up through both.
    """

    minimum: int
    maximum: int
    cpu_percent: int = 70

    def __post_init__(self) -> None:
        if not 2 <= self.minimum <= self.maximum:
            raise ValueError(f"scaling needs 2 <= minimum <= maximum, got {self.minimum}..{self.maximum}")
        if not 10 <= self.cpu_percent <= 100:
            raise ValueError(f"cpu_percent must be 10-100, got {self.cpu_percent}")


@dataclass
class KubernetesServiceArgs:
    spec: ServiceSpec
    target: KubernetesTarget
    ingress: tuple[Allow, ...] = ()
    egress: tuple[Allow, ...] = ()
    service_account: pulumi.Input[str] | None = None
    """A ServiceAccount whose token the program needs (it calls the API); None mounts no token."""
    init_args: tuple[str, ...] = ()
    """A setup step run to completion before the program: same image, environment and volumes."""
    checkov_skips: Mapping[str, str] | None = None
    """Further checkov checks this workload cannot pass, each with its one-line reason."""
    scaling: Scaling | None = None
    """None: one replica."""


class KubernetesService(pulumi.ComponentResource):
    """ConfigMap, Secret, claims, the workload, its Service and its NetworkPolicy."""

    def __init__(self, name: str, args: KubernetesServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:workloads:KubernetesService", name, None, opts)
        spec, target = args.spec, args.target
        if spec.namespace != target.name:
            raise ValueError(f"{spec.name} is specified for namespace {spec.namespace}, rendered into {target.name}")
        if spec.uid in (None, 0):
            raise ValueError(f"{spec.name} needs a non-root user to run on Kubernetes")
        child = pulumi.ResourceOptions(parent=self)
        namespace_name = target.namespace.metadata.name
        labels = labels_for(spec.name)

        def metadata(suffix: str = "", **extra) -> dict:
            return {"name": spec.name + suffix, "namespace": namespace_name, "labels": labels, **extra}

        volumes: list[dict] = []
        mounts: list[dict] = []
        pod_annotations: dict[str, str] = {}
        if spec.config_files:
            files = {_config_key(f.path): f.content for f in spec.config_files}
            self.config_map = k8s.core.v1.ConfigMap(spec.name, metadata=metadata("-config"), data=files, opts=child)
            volumes.append({"name": "config", "config_map": {"name": self.config_map.metadata.name}})
            mounts += [
                {"name": "config", "mount_path": f.path, "sub_path": _config_key(f.path), "read_only": True}
                for f in spec.config_files
            ]
            # subPath mounts never see an updated ConfigMap: a new config rolls the pods instead.
            pod_annotations[CONFIG_HASH_ANNOTATION] = _digest(files)

        env: list[dict] = [{"name": key, "value": value} for key, value in sorted(spec.env.items())]
        if spec.secret_env:
            self.secret = k8s.core.v1.Secret(
                spec.name,
                metadata=metadata("-env"),
                type="Opaque",
                string_data={key: pulumi.Output.secret(value) for key, value in spec.secret_env.items()},
                opts=child,
            )
            env += [
                {"name": key, "value_from": {"secret_key_ref": {"name": self.secret.metadata.name, "key": key}}}
                for key in sorted(spec.secret_env)
            ]

        self.claims = [
            k8s.core.v1.PersistentVolumeClaim(
                f"{spec.name}-{volume.name}",
                metadata={"name": f"{spec.name}-{volume.name}", "namespace": namespace_name, "labels": labels},
                spec={
                    "access_modes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{volume.size_gib}Gi"}},
                    "storage_class_name": target.storage_class,
                },
                opts=pulumi.ResourceOptions(parent=self, **target.data_protection),
            )
            for volume in spec.volumes
        ]
        for claim, volume in zip(self.claims, spec.volumes, strict=True):
            claim_source = {"claim_name": claim.metadata.name}
            volumes.append({"name": f"data-{volume.name}", "persistent_volume_claim": claim_source})
            mounts.append({"name": f"data-{volume.name}", "mount_path": volume.mount_path})
        for index, path in enumerate(spec.scratch_paths):
            volumes.append({"name": f"scratch-{index}", "empty_dir": {"size_limit": SCRATCH_SIZE}})
            mounts.append({"name": f"scratch-{index}", "mount_path": path})

        uid, gid = (int(part) for part in (spec.user or "").split(":"))
        pod_spec = {
            "automount_service_account_token": args.service_account is not None,
            "service_account_name": args.service_account,
            "enable_service_links": False,
            "security_context": {
                **restricted.pod(uid, gid=gid, fs_group=bool(spec.volumes)),
                **({"fsGroupChangePolicy": "OnRootMismatch"} if spec.volumes else {}),
            },
            "topology_spread_constraints": _spread(spec.name) if args.scaling else None,
            "init_containers": [self._init_container(spec, env, mounts, args.init_args)] if args.init_args else None,
            "containers": [self._container(spec, env, mounts)],
            "volumes": volumes or None,
        }
        template = {"metadata": {"labels": labels, "annotations": pod_annotations or None}, "spec": pod_spec}
        skips = {**PINNED_TAG_SKIPS, **(args.checkov_skips or {})}
        workload_metadata = metadata(annotations=_checkov_annotations(skips))
        selector = {"match_labels": {NAME_LABEL: spec.name}}
        if spec.volumes and args.scaling:
            raise ValueError(f"{spec.name} keeps data on a ReadWriteOnce claim: it cannot scale out")
        if spec.volumes:
            # One pod per claim at a time: a StatefulSet never runs two pods on a ReadWriteOnce claim.
            self.workload = k8s.apps.v1.StatefulSet(
                spec.name,
                metadata=workload_metadata,
                spec={
                    "service_name": spec.name,
                    "replicas": 1,
                    "selector": selector,
                    "template": template,
                    "revision_history_limit": 3,
                },
                opts=child,
            )
        else:
            self.workload = k8s.apps.v1.Deployment(
                spec.name,
                metadata=workload_metadata,
                spec={
                    "replicas": None if args.scaling else 1,
                    "selector": selector,
                    "template": template,
                    "revision_history_limit": 3,
                },
                opts=child,
            )
        if args.scaling:
            self._scale(spec, args.scaling, metadata(), selector)

        self.service = k8s.core.v1.Service(
            spec.name,
            metadata=metadata(),
            spec={
                "type": "ClusterIP",
                "selector": {NAME_LABEL: spec.name},
                "ports": [
                    {"name": p.name, "port": p.number, "target_port": p.name, "protocol": p.protocol.upper()}
                    for p in spec.ports
                ],
            },
            opts=child,
        )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            spec.name,
            metadata=metadata(),
            spec={
                "pod_selector": selector,
                "policy_types": ["Ingress", "Egress"],
                "ingress": [policy_rule("from", allow) for allow in args.ingress],
                "egress": [policy_rule("to", allow) for allow in args.egress] + [DNS_RULE],
            },
            opts=child,
        )
        self.register_outputs({"workload": self.workload.metadata.name, "service": self.service.metadata.name})

    def _scale(self, spec: ServiceSpec, scaling: Scaling, metadata: dict, selector: dict) -> None:
        child = pulumi.ResourceOptions(parent=self)
        self.autoscaler = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            spec.name,
            metadata=metadata,
            spec={
                "scale_target_ref": {
                    "api_version": "apps/v1",
                    "kind": "Deployment",
                    "name": self.workload.metadata.name,
                },
                "min_replicas": scaling.minimum,
                "max_replicas": scaling.maximum,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "average_utilization": scaling.cpu_percent},
                        },
                    }
                ],
            },
            opts=child,
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            spec.name, metadata=metadata, spec={"max_unavailable": 1, "selector": selector}, opts=child
        )

    @staticmethod
    def _init_container(spec: ServiceSpec, env: list[dict], mounts: list[dict], init_args: tuple[str, ...]) -> dict:
        return {**_runtime(spec, env, mounts), "name": f"{spec.name}-init", "args": list(init_args)}

    @staticmethod
    def _container(spec: ServiceSpec, env: list[dict], mounts: list[dict]) -> dict:
        health = spec.health
        startup_failures = max(3, -(-health.start_period_seconds // 5))
        http_get = {"port": health.port, "path": health.path}
        return {
            **_runtime(spec, env, mounts),
            "name": spec.name,
            "args": list(spec.args) or None,
            "ports": [
                {"name": port.name, "container_port": port.number, "protocol": port.protocol.upper()}
                for port in spec.ports
            ],
            "startup_probe": {"http_get": http_get, "period_seconds": 5, "failure_threshold": startup_failures},
            "readiness_probe": {"http_get": http_get, "period_seconds": 10, "timeout_seconds": 3},
            # Liveness asks only "is it listening": a store waiting on a peer is unready, not dead.
            "liveness_probe": {"tcp_socket": {"port": health.port}, "period_seconds": 20, "failure_threshold": 6},
        }


def _runtime(spec: ServiceSpec, env: list[dict], mounts: list[dict]) -> dict:
    """What the program's containers share: image, environment, volumes, resources, restrictions."""
    return {
        "image": spec.image.ref,
        "image_pull_policy": "IfNotPresent",
        "env": env or None,
        "volume_mounts": mounts or None,
        "resources": {
            "requests": {"cpu": f"{spec.cpu_millis}m", "memory": f"{spec.memory_mib}Mi"},
            "limits": {"cpu": f"{max(spec.cpu_millis, CPU_LIMIT_MILLIS)}m", "memory": f"{spec.memory_mib}Mi"},
        },
        "security_context": restricted.container(restate_pod=True),
    }


DNS_RULE = {
    "to": [
        {
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": "kube-system"}},
            "pod_selector": {"match_labels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"port": DNS_PORT, "protocol": "UDP"}, {"port": DNS_PORT, "protocol": "TCP"}],
}


def _spread(name: str) -> list[dict]:
    """Replicas on different nodes where the nodes allow it; never unschedulable for it."""
    return [
        {
            "max_skew": 1,
            "topology_key": "kubernetes.io/hostname",
            "when_unsatisfiable": "ScheduleAnyway",
            "label_selector": {"match_labels": {NAME_LABEL: name}},
        }
    ]


def policy_rule(direction: str, allow: Allow) -> dict:
    return {direction: [allow.peer.peer()], "ports": [{"port": allow.port, "protocol": "TCP"}]}


def _config_key(path: str) -> str:
    return path.strip("/").replace("/", "_")


def _digest(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key].encode() + b"\0")
    return digest.hexdigest()


def _checkov_annotations(skips: Mapping[str, str]) -> dict[str, str]:
    return {f"checkov.io/skip{index}": f"{check}={reason}" for index, (check, reason) in enumerate(skips.items(), 1)}
