"""The agent image in ECR: immutable tags, scanned, pruned, pushed under the registry's name."""

from __future__ import annotations

import json

import pulumi_docker as docker

from components.aws.container_image import KEPT_IMAGES, ContainerImage, ContainerImageArgs
from components.runtime.spec import Image
from tests.aws.support import AwsRun, run_aws

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
LOCAL = Image("llm-infra-lab/agent", "0123abcd4567", build_context="apps/agent")


def pushed(local_image_id: str = "sha256:built-here") -> tuple[AwsRun, ContainerImage]:
    made = []

    def program():
        args = ContainerImageArgs(
            repository="lab/agent", image=LOCAL, registry=REGISTRY, engine=docker.Provider("engine")
        )
        made.append(ContainerImage("agent-image", args))

    return run_aws(program, {"agent-image-build": {"imageId": local_image_id}}), made[0]


def test_the_repository_keeps_each_tag_for_one_image_and_scans_it():
    run, _ = pushed()
    repository = run.named("aws:ecr/repository:Repository", "agent-image")
    assert repository["name"] == "lab/agent"
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert repository["forceDelete"] is True, "images are rebuilt from source: a quickstop may take them along"
    (rule,) = json.loads(run.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", "agent-image")["policy"])["rules"]
    assert rule["selection"]["countNumber"] == KEPT_IMAGES and rule["action"] == {"type": "expire"}


def test_the_local_build_is_pushed_under_the_registry_name_with_the_same_tag():
    run, component = pushed()
    assert component.image == Image(f"{REGISTRY}/lab/agent", LOCAL.tag)
    build = run.named("docker:index/remoteImage:RemoteImage", "agent-image-build")
    assert build["build"]["context"] == "apps/agent" and build["build"]["tags"] == [component.image.ref]
    assert build["build"]["platform"] == "linux/amd64", "the nodes are x86-64 whatever builds the image"
    push = run.named("docker:index/registryImage:RegistryImage", "agent-image")
    assert push["name"] == component.image.ref and push["keepRemotely"] is True
    assert push["authConfig"]["address"] == REGISTRY and push["authConfig"]["username"] == "AWS"
    repository = run.named("aws:ecr/repository:Repository", "agent-image")
    assert run.depends_on(push, repository) and run.depends_on(push, build), "pushed once built"


def test_the_same_source_built_elsewhere_is_not_pushed_again_to_its_immutable_tag():
    here, _ = pushed("sha256:built-here")
    elsewhere, _ = pushed("sha256:built-on-another-machine")
    push = "docker:index/registryImage:RegistryImage"
    assert here.named(push, "agent-image").inputs == elsewhere.named(push, "agent-image").inputs
