"""An image the lab builds, in a private ECR repository its EKS nodes pull from.

The local engine builds the image (as on the Docker phases) and pushes it under its
content-derived tag: tags are immutable, so a tag names one image for good, and a new source
tree is a new tag that rolls the pods. The nodes' role already reads ECR; nothing else can.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.runtime.spec import Image

KEPT_IMAGES = 10


@dataclass
class ContainerImageArgs:
    repository: str
    """The repository's name, e.g. llm-infra-lab-dev/agent."""
    image: Image
    """What to build: the local image spec, with its build context and tag."""
    registry: str
    """<account>.dkr.ecr.<region>.amazonaws.com"""
    engine: docker.Provider
    """The local Docker engine that builds and pushes."""
    platform: str = "linux/amd64"
    """The nodes' architecture, whatever the building machine's."""


def lifecycle_policy(kept: int) -> str:
    """Only the newest `kept` images stay: each source change pushes one."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the {kept} newest images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": kept},
                    "action": {"type": "expire"},
                }
            ]
        }
    )


class ContainerImage(pulumi.ComponentResource):
    def __init__(self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            name,
            name=args.repository,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            # Images are built from this repository's source, not data: any destroy may take them along.
            force_delete=True,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(name, repository=self.repository.name, policy=lifecycle_policy(KEPT_IMAGES), opts=child)
        self.image = Image(f"{args.registry}/{args.repository}", args.image.tag)
        """The same build, named for the registry: what the cluster's pods run."""
        built = docker.RemoteImage(
            f"{name}-build",
            name=self.image.ref,
            keep_locally=True,
            build=docker.RemoteImageBuildArgs(
                context=args.image.build_context, tags=[self.image.ref], platform=args.platform
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.engine),
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.pushed = docker.RegistryImage(
            name,
            name=self.image.ref,
            auth_config={"address": args.registry, "username": token.user_name, "password": token.password},
            # A rollback to an older tag must find it; the lifecycle policy prunes.
            keep_remotely=True,
            # The tag, not the local image id: a rebuild of the same source on another machine, or on a newer
            # base image, has another id, and ECR refuses a second push to an immutable tag.
            triggers={"tag": args.image.tag},
            opts=pulumi.ResourceOptions(parent=self, provider=args.engine, depends_on=[self.repository, built]),
        )
        self.register_outputs({"image": self.image.ref, "repositoryUrl": self.repository.repository_url})
