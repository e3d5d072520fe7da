"""The agents, Qdrant and their traffic in one namespace, from the specs the Docker phase runs."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_random as random

from components.runtime.kubernetes_service import (
    INTERNET,
    Allow,
    KubernetesService,
    KubernetesServiceArgs,
    KubernetesTarget,
    Pods,
    Scaling,
    from_pods,
    to_service,
)
from components.runtime.spec import Image, ServiceSpec
from components.workloads.agent import ROLES, LlmBackend, agent_service, traffic_service, workflow_service
from components.workloads.qdrant import qdrant_service

HTTPS_PORT = 443


@dataclass
class AgentsOnKubernetesArgs:
    target: KubernetesTarget
    image: Image
    image_ready: pulumi.Resource
    """What makes `image` available to the cluster's runtime (a load into minikube, a push)."""
    llm: LlmBackend
    otlp: ServiceSpec
    """The in-cluster OTLP gateway the agents and the traffic send to."""
    gateway: Pods
    """The gateway's pods, which route outside requests to the agents."""
    scaling: Scaling | None = None
    """How the agents scale out; None runs one of each."""
    ask_for_key: bool = False
    """Generate a key the agents ask every review for (the traffic sends it): for agents on a network."""


class AgentsOnKubernetes(pulumi.ComponentResource):
    """Qdrant as a StatefulSet on a retained claim; the agents and the traffic as Deployments.

    NetworkPolicies admit what the wiring uses and nothing else: the traffic and the gateway
    reach the agents, the agents reach Qdrant, everyone sends OTLP to Alloy, and only an
    agent with a paid provider leaves the cluster, on HTTPS.
    """

    def __init__(self, name: str, args: AgentsOnKubernetesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:workloads:AgentsOnKubernetes", name, None, opts)
        namespace = args.target.name
        otlp_url = args.otlp.url("otlp-grpc")
        self.access_key: pulumi.Output[str] | None = None
        if args.ask_for_key:
            key = random.RandomPassword(
                "agent-api-key", length=40, special=False, opts=pulumi.ResourceOptions(parent=self)
            )
            self.access_key = pulumi.Output.secret(key.result)
        self.qdrant = replace(qdrant_service(), namespace=namespace)
        reviewers = [
            replace(
                agent_service(
                    role, args.image, args.llm, otlp_url, self.qdrant.url("http"), access_key=self.access_key
                ),
                namespace=namespace,
            )
            for role in ROLES
        ]
        self.workflow = replace(
            workflow_service(args.image, args.llm, otlp_url, reviewers, access_key=self.access_key),
            namespace=namespace,
        )
        self.agents = [*reviewers, self.workflow]
        agent_urls = [agent.url("http") for agent in self.agents]
        self.traffic = replace(
            traffic_service(args.image, agent_urls, otlp_url, args.llm.provider, access_key=self.access_key),
            namespace=namespace,
        )
        send_telemetry = to_service(args.otlp, "otlp-grpc")
        call_provider = (Allow(INTERNET, HTTPS_PORT),) if args.llm.api_key is not None else ()
        key_in_env = {"CKV_K8S_35": "the app reads its keys from the environment only"}

        def pods(spec: ServiceSpec) -> Pods:
            return Pods(namespace, spec.name)

        def render_agent(
            agent: ServiceSpec,
            *,
            callers: tuple[Pods, ...] = (),
            calls: tuple[Allow, ...] = (),
            scaling: Scaling | None = None,
        ) -> KubernetesService:
            """An agent the traffic, the gateway and `callers` reach; it reaches `calls`, Alloy and the provider."""
            return self._render(
                agent,
                args,
                ingress=tuple(
                    from_pods(caller, agent, "http") for caller in (pods(self.traffic), args.gateway, *callers)
                ),
                egress=(*calls, send_telemetry, *call_provider),
                skips=key_in_env if agent.secret_env else None,
                depends_on=[args.image_ready],
                scaling=scaling,
            )

        self.services = {
            self.qdrant.name: self._render(
                self.qdrant,
                args,
                ingress=tuple(from_pods(pods(agent), self.qdrant, "http") for agent in reviewers),
                skips={"CKV_K8S_40": f"the unprivileged image's user (uid {self.qdrant.uid}) owns its files"},
            ),
            **{
                reviewer.name: render_agent(
                    reviewer,
                    callers=(pods(self.workflow),),
                    calls=(to_service(self.qdrant, "http"),),
                    scaling=args.scaling,
                )
                for reviewer in reviewers
            },
            self.workflow.name: render_agent(
                self.workflow, calls=tuple(to_service(reviewer, "http") for reviewer in reviewers)
            ),
            self.traffic.name: self._render(
                self.traffic,
                args,
                egress=(*(to_service(agent, "http") for agent in self.agents), send_telemetry),
                skips=key_in_env if self.traffic.secret_env else None,
                depends_on=[args.image_ready],
            ),
        }
        self.senders = tuple(pods(spec) for spec in (*self.agents, self.traffic))
        self.register_outputs({"services": list(self.services)})

    def _render(
        self,
        spec: ServiceSpec,
        args: AgentsOnKubernetesArgs,
        *,
        ingress: tuple[Allow, ...] = (),
        egress: tuple[Allow, ...] = (),
        skips: dict[str, str] | None = None,
        depends_on: list[pulumi.Resource] | None = None,
        scaling: Scaling | None = None,
    ) -> KubernetesService:
        return KubernetesService(
            spec.name,
            KubernetesServiceArgs(
                spec=spec, target=args.target, ingress=ingress, egress=egress, checkov_skips=skips, scaling=scaling
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
