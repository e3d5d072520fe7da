"""The EKS cluster: a closed API, encrypted secrets, explicit admin, IRSA, pinned add-ons and bounded spot nodes."""

from __future__ import annotations

import functools
import json

import pulumi
import pytest

from components.aws.eks import ADDONS, EksCluster, EksClusterArgs
from tests.aws.support import ACCOUNT, DEPLOYER_ROLE_ARN, AwsRun, run_aws

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"
ENDPOINT = "https://0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com"
CA_DATA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"
CLUSTER_SG = "sg-0a1b2c3d4e5f60718"
EBS_CSI_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/llm-lab-ebs-csi-20260101"
CLUSTER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lab-cluster-role-1a2b3c4"
NODE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lab-node-role-5d6e7f8"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ADDON_VERSIONS = {
    "vpc-cni": "v1.20.4-eksbuild.1",
    "kube-proxy": "v1.33.3-eksbuild.6",
    "coredns": "v1.12.3-eksbuild.1",
    "aws-ebs-csi-driver": "v1.48.0-eksbuild.2",
}

COMPUTED = {
    "lab-cluster": {
        "arn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/llm-lab",
        "endpoint": ENDPOINT,
        "certificateAuthority": {"data": CA_DATA},
        "identities": [{"oidcs": [{"issuer": f"https://{ISSUER}"}]}],
        "vpcConfig": {"clusterSecurityGroupId": CLUSTER_SG},
    },
    "lab-oidc": {"arn": OIDC_ARN},
    "lab-secrets": {"arn": KEY_ARN, "keyId": KEY_ARN.rsplit("/", 1)[-1]},
    "lab-cluster-role": {"arn": CLUSTER_ROLE_ARN},
    "lab-node-role": {"arn": NODE_ROLE_ARN},
    "lab-ebs-csi-role": {"arn": EBS_CSI_ROLE_ARN},
}
"""What EKS and IAM report back once the cluster exists."""


def eks_args(**changes) -> EksClusterArgs:
    fields = {
        "name": "llm-lab",
        "kubernetes_version": "1.33",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "endpoint_public_access_cidrs": ["203.0.113.7/32"],
        "admin_principal_arn": DEPLOYER_ROLE_ARN,
        "node_instance_type": "t3.medium",
        "node_capacity_type": "SPOT",
        "node_min": 1,
        "node_desired": 2,
        "node_max": 3,
        "node_disk_gib": 20,
        "addon_versions": ADDON_VERSIONS,
    }
    return EksClusterArgs(**{**fields, **changes})


@functools.cache
def cluster() -> AwsRun:
    def program():
        eks = EksCluster("lab", eks_args())
        for attribute in ("name", "endpoint", "oidc_issuer", "oidc_provider_arn", "node_security_group_id"):
            pulumi.export(attribute, getattr(eks, attribute))
        pulumi.export("certificate_authority", eks.certificate_authority)
        pulumi.export("kubeconfig", eks.kubeconfig)

    return run_aws(program, COMPUTED)


def test_cluster_is_pinned_logged_and_encrypts_secrets_with_a_rotating_key():
    run = cluster()
    eks = run.named(CLUSTER, "lab-cluster")
    assert eks["name"] == "llm-lab"
    assert eks["version"] == "1.33"
    assert {"api", "audit", "authenticator"} <= set(eks["enabledClusterLogTypes"])
    assert eks["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": KEY_ARN}}
    assert run.named("aws:kms/key:Key", "lab-secrets")["enableKeyRotation"] is True
    alias = run.named("aws:kms/alias:Alias", "lab-secrets-alias")
    assert alias["name"] == "alias/llm-lab-eks-secrets"
    assert alias["targetKeyId"] == "1234abcd-12ab-34cd-56ef-1234567890ab"
    assert eks["roleArn"] == CLUSTER_ROLE_ARN


def test_the_cluster_never_slides_into_paid_extended_support():
    # EKS's default, EXTENDED, bills six times the control plane's price once the version ages out.
    assert cluster().named(CLUSTER, "lab-cluster")["upgradePolicy"] == {"supportType": "STANDARD"}


def test_control_plane_logs_expire_and_their_group_exists_before_the_cluster():
    run = cluster()
    logs = run.named("aws:cloudwatch/logGroup:LogGroup", "lab-control-plane-logs")
    assert logs["name"] == "/aws/eks/llm-lab/cluster"
    assert logs["retentionInDays"] == 7
    assert run.depends_on(run.named(CLUSTER, "lab-cluster"), logs)


def test_the_log_group_outlives_the_cluster_unless_data_goes_too():
    """EKS re-creates the group while the cluster is deleted: deleting it with the cluster breaks the next up."""
    logs = cluster().named("aws:cloudwatch/logGroup:LogGroup", "lab-control-plane-logs")
    assert (logs.protect, logs.retain_on_delete) == (True, True)
    released = run_aws(lambda: EksCluster("lab", eks_args(retain_logs=False)), COMPUTED)
    logs = released.named("aws:cloudwatch/logGroup:LogGroup", "lab-control-plane-logs")
    assert (logs.protect, logs.retain_on_delete) == (False, False)


def test_api_endpoint_is_public_only_to_the_configured_cidrs_and_private_inside_the_vpc():
    vpc = cluster().named(CLUSTER, "lab-cluster")["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["publicAccessCidrs"] == ["203.0.113.7/32"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["subnetIds"] == ["subnet-a", "subnet-b"]


def test_cluster_admin_is_the_named_principal_through_access_entries_only():
    run = cluster()
    access = run.named(CLUSTER, "lab-cluster")["accessConfig"]
    assert access == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    entry = run.named("aws:eks/accessEntry:AccessEntry", "lab-admin")
    assert entry["principalArn"] == DEPLOYER_ROLE_ARN
    assert entry["clusterName"] == "llm-lab"
    association = run.named("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "lab-admin")
    assert association["principalArn"] == DEPLOYER_ROLE_ARN
    assert association["policyArn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert association["accessScope"] == {"type": "cluster"}
    assert run.depends_on(association, entry)


def test_oidc_provider_trusts_the_cluster_issuer_for_sts():
    run = cluster()
    provider = run.named("aws:iam/openIdConnectProvider:OpenIdConnectProvider", "lab-oidc")
    assert provider["url"] == f"https://{ISSUER}"
    assert provider["clientIdLists"] == ["sts.amazonaws.com"]
    assert run.run.outputs["oidc_issuer"] == ISSUER
    assert run.run.outputs["oidc_provider_arn"] == OIDC_ARN


def test_node_group_is_bounded_spot_capacity_on_al2023():
    nodes = cluster().named(NODE_GROUP, "lab-nodes")
    assert nodes["scalingConfig"] == {"minSize": 1, "desiredSize": 2, "maxSize": 3}
    assert nodes["capacityType"] == "SPOT"
    assert nodes["amiType"] == "AL2023_x86_64_STANDARD"
    assert not {"instanceTypes", "diskSize"} & nodes.inputs.keys(), "EKS refuses both beside a launch template"
    assert nodes["updateConfig"] == {"maxUnavailable": 1}
    assert nodes["subnetIds"] == ["subnet-a", "subnet-b"]
    assert nodes["nodeRoleArn"] == NODE_ROLE_ARN
    assert nodes["clusterName"] == "llm-lab"


def _attached(run: AwsRun, role_name: str) -> set[str]:
    return {a["policyArn"] for a in run.of_type(ATTACHMENT) if a["role"] == f"{role_name}-id"}


def test_roles_get_only_the_aws_managed_policies_eks_documents():
    run = cluster()
    assert _attached(run, "lab-cluster-role") == {"arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}
    assert _attached(run, "lab-node-role") == {
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    }
    assert _attached(run, "lab-ebs-csi-role") == {"arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"}
    services = {
        role.name: json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"]
        for role in run.of_type(ROLE)
        if role.name in ("lab-cluster-role", "lab-node-role")
    }
    assert services == {
        "lab-cluster-role": {"Service": "eks.amazonaws.com"},
        "lab-node-role": {"Service": "ec2.amazonaws.com"},
    }


def test_ebs_csi_driver_assumes_its_own_role_through_irsa():
    run = cluster()
    trust = json.loads(run.named(ROLE, "lab-ebs-csi-role")["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Federated": OIDC_ARN}
    subject = trust["Condition"]["StringEquals"][f"{ISSUER}:sub"]
    assert subject == "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    assert run.named(ADDON, "lab-aws-ebs-csi-driver")["serviceAccountRoleArn"] == EBS_CSI_ROLE_ARN


def test_every_addon_is_pinned_and_overwrites_conflicts():
    addons = {a["addonName"]: a for a in cluster().of_type(ADDON)}
    assert set(addons) == set(ADDONS)
    for name, addon in addons.items():
        assert addon["addonVersion"] == ADDON_VERSIONS[name]
        assert addon["clusterName"] == "llm-lab"
        assert addon["resolveConflictsOnUpdate"] == "OVERWRITE"


def test_roles_hold_their_policies_before_the_cluster_and_the_nodes_use_them():
    run = cluster()
    eks, nodes = run.named(CLUSTER, "lab-cluster"), run.named(NODE_GROUP, "lab-nodes")
    for attachment in run.of_type(ATTACHMENT):
        if attachment["role"] == "lab-cluster-role-id":
            assert run.depends_on(eks, attachment)
        if attachment["role"] == "lab-node-role-id":
            assert run.depends_on(nodes, attachment)


def test_networking_addons_come_before_the_nodes_and_the_rest_after():
    run = cluster()
    nodes = run.named(NODE_GROUP, "lab-nodes")
    for addon in ("vpc-cni", "kube-proxy"):
        assert run.depends_on(nodes, run.named(ADDON, f"lab-{addon}"))
    for addon in ("coredns", "aws-ebs-csi-driver"):
        assert run.depends_on(run.named(ADDON, f"lab-{addon}"), nodes)


def test_outputs_and_a_secret_kubeconfig_that_authenticates_through_the_aws_cli():
    run = cluster().run
    assert run.outputs["name"] == "llm-lab"
    assert run.outputs["endpoint"] == ENDPOINT
    assert run.outputs["certificate_authority"] == CA_DATA
    assert run.outputs["node_security_group_id"] == CLUSTER_SG
    assert "kubeconfig" in run.secret_outputs
    config = json.loads(run.outputs["kubeconfig"])
    assert config["clusters"][0]["cluster"] == {"server": ENDPOINT, "certificate-authority-data": CA_DATA}
    (user,) = config["users"]
    assert user["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert user["user"]["exec"]["command"] == "aws"
    assert user["user"]["exec"]["args"] == ["eks", "get-token", "--cluster-name", "llm-lab", "--region", "us-east-1"]
    assert config["current-context"] == config["contexts"][0]["name"]


def test_every_resource_belongs_to_the_component_tree():
    run = cluster()
    (component,) = run.of_type("llm-infra-lab:aws:EksCluster")
    (irsa,) = run.of_type("llm-infra-lab:aws:IrsaRole")
    assert irsa.parent == component.urn
    assert {r.parent for r in run.resources if r is not component} == {component.urn, irsa.urn}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"endpoint_public_access_cidrs": ["0.0.0.0/0"]}, r"must not include 0\.0\.0\.0/0"),
        ({"endpoint_public_access_cidrs": ["203.0.113.7/32", "::/0"]}, "must not include ::/0"),
        ({"endpoint_public_access_cidrs": []}, "is empty, which EKS treats as 0.0.0.0/0"),
        ({"node_min": 3, "node_desired": 3, "node_max": 2}, "min <= desired <= max"),
        ({"node_min": 1, "node_desired": 4, "node_max": 3}, "min <= desired <= max"),
        ({"node_min": 0, "node_desired": 0, "node_max": 0}, "max >= 1"),
        ({"node_capacity_type": "spot"}, "node_capacity_type must be one of SPOT, ON_DEMAND"),
        ({"node_instance_type": ""}, "node_instance_type must look like t3.medium"),
        ({"node_disk_gib": 8}, "node_disk_gib must be at least 20"),
        ({"subnet_ids": ["subnet-a"]}, "at least two availability zones"),
        ({"kubernetes_version": "latest"}, "kubernetes_version must look like 1.33"),
        ({"name": "a-cluster-name-too-long-for-iam"}, "must be 1-29 letters"),
        ({"addon_versions": {k: v for k, v in ADDON_VERSIONS.items() if k != "coredns"}}, r"missing: \['coredns'\]"),
        ({"addon_versions": {**ADDON_VERSIONS, "metrics-server": "v0.8.0"}}, r"not managed here: \['metrics-server'\]"),
    ],
)
def test_invalid_cluster_args_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        eks_args(**changes)


def test_valid_args_are_accepted():
    assert eks_args(endpoint_public_access_cidrs=["203.0.113.0/24", "2001:db8::/48"], node_min=0).node_min == 0


def test_nodes_state_their_type_disk_imdsv2_and_standard_credits_in_a_launch_template():
    run = cluster()
    template = run.named("aws:ec2/launchTemplate:LaunchTemplate", "lab-nodes")
    assert template["instanceType"] == "t3.medium"
    (disk,) = template["blockDeviceMappings"]
    assert disk["deviceName"] == "/dev/xvda"
    assert disk["ebs"] == {"volumeSize": 20, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}
    # Pods are one hop further than the node: with a limit of 1 they cannot take the node role's credentials.
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
    }
    assert template["creditSpecification"] == {"cpuCredits": "standard"}, "unlimited would bill surplus credits"
    nodes = run.named(NODE_GROUP, "lab-nodes")
    assert nodes["launchTemplate"]["id"] == "lab-nodes-id"
    assert run.depends_on(nodes, template)


def test_a_type_without_cpu_credits_gets_no_credit_mode():
    run = run_aws(lambda: EksCluster("lab", eks_args(node_instance_type="m6i.large")), COMPUTED)
    assert "creditSpecification" not in run.named("aws:ec2/launchTemplate:LaunchTemplate", "lab-nodes").inputs
