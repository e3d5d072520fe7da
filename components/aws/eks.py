"""An EKS cluster from plain pulumi-aws resources, so every piece shows up in a preview and under test mocks."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.irsa import MAX_ROLE_NAME_PREFIX, STS_AUDIENCE, IrsaRole, IrsaRoleArgs
from components.runtime.spec import data_options

CLUSTER_LOG_TYPES = ("api", "audit", "authenticator")
LOG_RETENTION_DAYS = 7
AMI_TYPE = "AL2023_x86_64_STANDARD"
CAPACITY_TYPES = ("SPOT", "ON_DEMAND")
SUPPORT_TYPE = "STANDARD"

NODES_FIRST_ADDONS = ("vpc-cni", "kube-proxy")
"""DaemonSets the nodes need to become Ready: installed at the pinned version before the node group."""
AFTER_NODES_ADDONS = ("coredns", "aws-ebs-csi-driver")
"""Deployments: they only become healthy once there are nodes to schedule on."""
ADDONS = (*NODES_FIRST_ADDONS, *AFTER_NODES_ADDONS)
# The VPC CNI enforces NetworkPolicies only when asked to; every lab workload ships one.
ADDON_CONFIGURATION = {"vpc-cni": json.dumps({"enableNetworkPolicy": "true"})}

EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_ROLE_SUFFIX = "-ebs-csi"
MAX_CLUSTER_NAME = MAX_ROLE_NAME_PREFIX - len(EBS_CSI_ROLE_SUFFIX)
"""The cluster name prefixes the EBS CSI driver's IAM role name."""
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_KUBERNETES_VERSION = re.compile(r"^1\.\d+$")
_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
BURSTABLE = re.compile(r"^t\d[a-z]*\.")
"""T2, T3, T3a, T4g: they earn CPU credits, and run `unlimited` (billed surplus) unless told otherwise."""
ROOT_DEVICE = "/dev/xvda"
"""The AL2023 EKS image's root volume."""


@dataclass(frozen=True)
class EksClusterArgs:
    name: str
    kubernetes_version: str
    subnet_ids: Sequence[pulumi.Input[str]]
    """Public subnets, one per zone: nodes get public addresses and need no NAT gateway."""
    endpoint_public_access_cidrs: Sequence[str]
    """Who may reach the public API endpoint, e.g. your office or home address as a /32."""
    admin_principal_arn: pulumi.Input[str]
    """The IAM user or role granted cluster admin: whoever runs `pulumi up`, named rather than looked up."""
    node_instance_type: str
    """One type: its T3 credit mode can only be stated for a launch template that names the type."""
    node_capacity_type: str
    node_min: int
    node_desired: int
    node_max: int
    node_disk_gib: int
    addon_versions: Mapping[str, pulumi.Input[str]]
    """A pinned version for each of ADDONS, e.g. {"coredns": "v1.12.1-eksbuild.2", …}."""
    autoscaled: bool = False
    """A cluster autoscaler sizes the node groups after creation: `pulumi up` leaves their size alone."""
    retain_logs: bool = True
    """Protect the control-plane log group and keep it on delete: EKS writes to it while the cluster is being
    deleted and re-creates it if it is gone, so a group deleted with the cluster can make the next `up` fail."""

    def __post_init__(self) -> None:
        if not _CLUSTER_NAME.match(self.name) or len(self.name) > MAX_CLUSTER_NAME:
            raise ValueError(
                f"cluster name {self.name!r} must be 1-{MAX_CLUSTER_NAME} letters, digits or '-', not starting with '-'"
            )
        if not _KUBERNETES_VERSION.match(self.kubernetes_version):
            raise ValueError(f"kubernetes_version must look like 1.33, got {self.kubernetes_version!r}")
        if len(self.subnet_ids) < 2:
            raise ValueError("EKS needs subnets in at least two availability zones")
        _check_public_cidrs(self.endpoint_public_access_cidrs)
        if not _INSTANCE_TYPE.match(self.node_instance_type):
            raise ValueError(f"node_instance_type must look like t3.medium, got {self.node_instance_type!r}")
        if self.node_capacity_type not in CAPACITY_TYPES:
            raise ValueError(f"node_capacity_type must be one of {', '.join(CAPACITY_TYPES)}")
        if not 0 <= self.node_min <= self.node_desired <= self.node_max or self.node_max < 1:
            raise ValueError(
                f"node counts must satisfy 0 <= min <= desired <= max and max >= 1, got "
                f"min={self.node_min} desired={self.node_desired} max={self.node_max}"
            )
        if self.node_disk_gib < 20:
            raise ValueError(f"node_disk_gib must be at least 20 (the AL2023 image needs it), got {self.node_disk_gib}")
        missing, unknown = set(ADDONS) - set(self.addon_versions), set(self.addon_versions) - set(ADDONS)
        if missing or unknown:
            raise ValueError(
                f"addon_versions must pin exactly {', '.join(ADDONS)}; missing: {sorted(missing)}, "
                f"not managed here: {sorted(unknown)}"
            )


def _check_public_cidrs(cidrs: Sequence[str]) -> None:
    """The public endpoint must never be open to the internet: an empty list means 0.0.0.0/0 to EKS."""
    if not cidrs:
        raise ValueError(
            "endpoint_public_access_cidrs is empty, which EKS treats as 0.0.0.0/0: list the CIDRs that "
            "administer the cluster, e.g. your address as a /32"
        )
    for cidr in cidrs:
        if ipaddress.ip_network(cidr).prefixlen == 0:
            raise ValueError(f"endpoint_public_access_cidrs must not include {cidr}: it opens the API to everyone")


def _service_role(
    name: str, service: str, policy_arns: Sequence[str], parent: pulumi.Resource
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role an AWS service assumes, with the managed policies it needs and their attachments to wait for."""
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            }
        ),
        opts=child,
    )
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy_arn.rsplit('/', 1)[-1]}", role=role.id, policy_arn=policy_arn, opts=child
        )
        for policy_arn in policy_arns
    ]
    return role, attachments


def exec_kubeconfig(name: str, region: str, endpoint: str, certificate_authority: str) -> str:
    """A kubeconfig that authenticates as whoever runs it, through `aws eks get-token`: no credential inside."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": name, "cluster": {"server": endpoint, "certificate-authority-data": certificate_authority}}
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", name, "--region", region],
                            "interactiveMode": "Never",
                        }
                    },
                }
            ],
        }
    )


class EksCluster(pulumi.ComponentResource):
    """An EKS cluster with encrypted secrets, audit logs that expire, access entries instead of aws-auth, IRSA,
    one managed node group and pinned managed add-ons.

    Cluster admin goes to one named principal through the access-entry API: the creator gets no hidden admin
    binding, so who can administer the cluster is visible in the program.
    """

    def __init__(self, name: str, args: EksClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:EksCluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        partition = aws.get_partition(opts=invoke)
        region = aws.get_region(opts=invoke).region

        def aws_policy(path: str) -> str:
            return f"arn:{partition.partition}:iam::aws:policy/{path}"

        secrets_key = aws.kms.Key(
            f"{name}-secrets",
            description=f"Encrypts Kubernetes secrets of EKS cluster {args.name}",
            enable_key_rotation=True,
            deletion_window_in_days=7,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets-alias", name=f"alias/{args.name}-eks-secrets", target_key_id=secrets_key.key_id, opts=child
        )
        cluster_role, cluster_policies = _service_role(
            f"{name}-cluster-role", f"eks.{partition.dns_suffix}", [aws_policy("AmazonEKSClusterPolicy")], self
        )
        # EKS creates this group itself, without retention, if it does not exist when logging starts.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.name}/cluster",
            retention_in_days=LOG_RETENTION_DAYS,
            opts=pulumi.ResourceOptions(parent=self, **data_options(args.retain_logs)),
        )
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args.name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            enabled_cluster_log_types=list(CLUSTER_LOG_TYPES),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=secrets_key.arn),
                resources=["secrets"],
            ),
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=True,
                public_access_cidrs=list(args.endpoint_public_access_cidrs),
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # EKS's default, EXTENDED, bills $0.60 an hour instead of $0.10 once the version leaves standard
            # support; STANDARD upgrades the cluster to the next minor then instead.
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(support_type=SUPPORT_TYPE),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *cluster_policies]),
        )

        admin = aws.eks.AccessEntry(
            f"{name}-admin", cluster_name=cluster.name, principal_arn=args.admin_principal_arn, opts=child
        )
        admin_access = aws.eks.AccessPolicyAssociation(
            f"{name}-admin",
            cluster_name=cluster.name,
            principal_arn=admin.principal_arn,
            policy_arn=f"arn:{partition.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
            access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            opts=child,
        )

        issuer_url = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        # IAM validates EKS issuers against its own trusted CAs, so no thumbprint is given.
        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc", url=issuer_url, client_id_lists=[STS_AUDIENCE], opts=child
        )
        oidc_issuer = issuer_url.apply(lambda url: url.removeprefix("https://"))

        node_role, node_policies = _service_role(
            f"{name}-node-role",
            f"ec2.{partition.dns_suffix}",
            [
                aws_policy("AmazonEKSWorkerNodePolicy"),
                aws_policy("AmazonEKS_CNI_Policy"),
                aws_policy("AmazonEC2ContainerRegistryReadOnly"),
            ],
            self,
        )
        self._name, self._args, self._cluster = name, args, cluster
        self._node_role, self._node_policies = node_role, node_policies
        self._launch_template = self._node_launch_template()
        nodes_first = [self.addon(addon, args.addon_versions[addon]) for addon in NODES_FIRST_ADDONS]
        node_group = self.node_group(
            "nodes", args.node_min, args.node_desired, args.node_max, after=[*nodes_first, *node_policies]
        )

        ebs_csi = IrsaRole(
            f"{name}-ebs-csi",
            IrsaRoleArgs(
                name=f"{args.name}{EBS_CSI_ROLE_SUFFIX}",
                oidc_provider_arn=oidc_provider.arn,
                oidc_issuer=oidc_issuer,
                namespace=EBS_CSI_NAMESPACE,
                service_account=EBS_CSI_SERVICE_ACCOUNT,
                managed_policy_arns=[aws_policy("service-role/AmazonEBSCSIDriverPolicy")],
            ),
            opts=child,
        )
        service_account_roles = {"aws-ebs-csi-driver": ebs_csi.role_arn}
        after_nodes = [
            self.addon(
                addon,
                args.addon_versions[addon],
                service_account_role_arn=service_account_roles.get(addon),
                after=[node_group],
            )
            for addon in AFTER_NODES_ADDONS
        ]
        self.workloads_ready: list[pulumi.Resource] = [node_group, *after_nodes]
        """What workloads need first: nodes to run on, DNS, and the driver that provisions their volumes."""

        self.name: pulumi.Output[str] = cluster.name
        self.endpoint: pulumi.Output[str] = cluster.endpoint
        self.certificate_authority: pulumi.Output[str] = cluster.certificate_authority.data
        self.oidc_provider_arn: pulumi.Output[str] = oidc_provider.arn
        self.oidc_issuer: pulumi.Output[str] = oidc_issuer
        self.node_security_group_id: pulumi.Output[str] = cluster.vpc_config.cluster_security_group_id
        # Secret although it holds no credential: the endpoint and its CA need not show up in logs. It
        # waits for the admin access: a provider built from it must not call the API before it may.
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, self.certificate_authority, admin_access.id).apply(
                lambda values: exec_kubeconfig(values[0], region, values[1], values[2])
            )
        )
        self.register_outputs(
            {
                "name": self.name,
                "endpoint": self.endpoint,
                "certificateAuthority": self.certificate_authority,
                "oidcProviderArn": self.oidc_provider_arn,
                "oidcIssuer": self.oidc_issuer,
                "nodeSecurityGroupId": self.node_security_group_id,
                "kubeconfig": self.kubeconfig,
            }
        )

    def _node_launch_template(self) -> aws.ec2.LaunchTemplate:
        """What every node states rather than inherits: its type, an encrypted gp3 disk, IMDSv2 that pods
        cannot reach (one hop: only the node itself), and T3 credits in `standard` mode, which never bill
        beyond the hourly price the cost model counts (EKS's own template would leave them `unlimited`)."""
        args = self._args
        return aws.ec2.LaunchTemplate(
            f"{self._name}-nodes",
            name_prefix=f"{args.name}-nodes-",
            description=f"Nodes of EKS cluster {args.name}",
            instance_type=args.node_instance_type,
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=ROOT_DEVICE,
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=args.node_disk_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1
            ),
            credit_specification=(
                aws.ec2.LaunchTemplateCreditSpecificationArgs(cpu_credits="standard")
                if BURSTABLE.match(args.node_instance_type)
                else None
            ),
            update_default_version=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def node_group(
        self, group: str, minimum: int, desired: int, maximum: int, *, after: Sequence[pulumi.Resource] = ()
    ) -> aws.eks.NodeGroup:
        """A managed node group from the nodes' launch template (type, disk, metadata, credits), sized on its own."""
        args = self._args
        return aws.eks.NodeGroup(
            f"{self._name}-{group}",
            cluster_name=self._cluster.name,
            node_role_arn=self._node_role.arn,
            subnet_ids=list(args.subnet_ids),
            ami_type=AMI_TYPE,
            capacity_type=args.node_capacity_type,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=self._launch_template.id, version=self._launch_template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=minimum, desired_size=desired, max_size=maximum),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={"llm-infra-lab/capacity-type": args.node_capacity_type.lower()},
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*after, *self._node_policies],
                ignore_changes=["scalingConfig.desiredSize"] if args.autoscaled else None,
            ),
        )

    def addon(
        self,
        addon: str,
        version: pulumi.Input[str],
        *,
        service_account_role_arn: pulumi.Input[str] | None = None,
        after: Sequence[pulumi.Resource] = (),
    ) -> aws.eks.Addon:
        """A managed add-on at a pinned version (and its ADDON_CONFIGURATION, if any)."""
        return aws.eks.Addon(
            f"{self._name}-{addon}",
            cluster_name=self._cluster.name,
            addon_name=addon,
            addon_version=version,
            configuration_values=ADDON_CONFIGURATION.get(addon),
            service_account_role_arn=service_account_role_arn,
            # Take over what EKS installed at cluster creation, and keep the pinned configuration on updates.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
        )
