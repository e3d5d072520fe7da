"""Phase `platform` (stack dev): the whole program under mocks, AWS and Kubernetes together.

The components have their own tests (tests/aws); these check the composition: the cluster
runs on the VPC's public subnets without NAT, MLflow's service account is the one the IRSA
role trusts and the role reaches only its prefix of the stack's bucket, the Kubernetes objects
are schema-valid and checkov-clean, and the cost stays under the lab's target.
"""

from __future__ import annotations

import configparser
import json
import runpy

import pytest

from components.aws import cost
from stacks import platform
from tests.aws.support import NODE_ALLOCATABLE_MIB, SYSTEM_MIB_PER_NODE, run_aws
from tests.conftest import evaluate
from tests.gateway_api_schema import SUPPORTED, gateway_api_errors
from tests.harness import REPO, ProgramRun, _Mocks, failed_stack, run_program
from tests.k8s_view import containers, manifests, of_kind, schema_errors, workloads

TARGET_HOURLY_USD = 0.20
BUCKET = "llm-infra-lab-dev-artifacts-123456789012-us-east-1"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return evaluate("dev", phase="platform")


@pytest.fixture(scope="module")
def objects(run) -> list[dict]:
    return manifests(run)


def test_no_nat_gateway_and_nodes_in_the_public_subnets(run):
    assert not run.of_type("aws:ec2/natGateway:NatGateway")
    public = {f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if s.get("mapPublicIpOnLaunch")}
    assert len(public) == 2
    (nodes,) = run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert set(nodes["subnetIds"]) == public
    assert nodes["capacityType"] == "SPOT"
    assert nodes["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 3}, "the platform fits on one node"


def test_cluster_is_pinned_and_its_api_is_restricted(run):
    (cluster,) = run.of_type("aws:eks/cluster:Cluster")
    assert cluster["version"] == platform.KUBERNETES_VERSION
    assert cluster["vpcConfig"]["publicAccessCidrs"] == ["203.0.113.10/32"]
    addons = {a["addonName"]: a["addonVersion"] for a in run.of_type("aws:eks/addon:Addon")}
    assert addons.keys() == {"vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
    assert all(version.startswith(f"v{platform.KUBERNETES_VERSION}") for version in addons.values())
    (cni,) = [a for a in run.of_type("aws:eks/addon:Addon") if a["addonName"] == "vpc-cni"]
    assert json.loads(cni["configurationValues"]) == {"enableNetworkPolicy": "true"}, "NetworkPolicies enforced"


def test_mlflow_reaches_only_its_prefix_of_the_bucket_through_irsa(run, objects):
    (account,) = [o for o in of_kind(objects, "ServiceAccount") if o["metadata"]["name"] == "mlflow"]
    roles = {r.name: r for r in run.of_type("aws:iam/role:Role")}
    role = roles["mlflow-role"]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == f"arn:aws:mock::123456789012:{role.name}"
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]
    subjects = [v for k, v in trust["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:mlops-system:mlflow"]
    policy = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", "mlflow-policy")["policy"])
    resources = {
        r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert resources <= {f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/mlflow/*"}
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a == "*" or a.endswith(":*") for a in actions)
    (mlflow,) = [w for w in workloads(objects) if w["metadata"]["name"] == "mlflow"]
    pod = mlflow["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "mlflow" and pod["automountServiceAccountToken"] is True
    args = pod["containers"][0]["args"]
    assert f"--artifacts-destination=s3://{BUCKET}/mlflow" in args
    assert "--serve-artifacts" in args
    assert any(a.startswith("--allowed-hosts=*.elb.us-east-1.amazonaws.com,") for a in args)
    assert "initContainers" not in pod, "the bucket exists; MLflow's role may not create buckets"
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert not env & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_the_cluster_is_used_only_once_it_admits_us_and_has_nodes_dns_and_volumes():
    """The Kubernetes provider waits for the admin access, the nodes and the add-ons workloads need."""
    aws_run = run_aws(lambda: runpy.run_path(str(REPO / "__main__.py")), overrides={"phase": "platform"})
    (provider,) = aws_run.of_type("pulumi:providers:kubernetes")
    waits_for = aws_run.dependencies[provider.urn] | set().union(*aws_run.property_dependencies[provider.urn].values())
    needed = [
        *aws_run.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation"),
        *aws_run.of_type("aws:eks/nodeGroup:NodeGroup"),
        *(a for a in aws_run.of_type("aws:eks/addon:Addon") if a["addonName"] in ("coredns", "aws-ebs-csi-driver")),
    ]
    assert len(needed) == 4
    assert {r.urn for r in needed} <= waits_for
    assert all(r.provider.startswith(provider.urn) for r in aws_run.resources if r.type.startswith("kubernetes:"))


def test_bucket_is_kept_and_named_for_dvc(run):
    (bucket,) = run.of_type("aws:s3/bucket:Bucket")
    assert bucket["bucket"] == BUCKET and bucket.protect and bucket.retain_on_delete
    assert run.outputs["dvcRemoteCommand"] == f"dvc remote add -d lab s3://{BUCKET}/dvc"
    assert run.outputs["artifactBucket"] == BUCKET


def test_one_network_load_balancer_in_front_of_the_same_gateway(run, objects):
    release = run.named("kubernetes:helm.sh/v3:Release", "traefik")
    assert release["values"]["service"]["enabled"] is False, "the Service is the gateway's own, not the chart's"
    (service,) = [o for o in of_kind(objects, "Service") if o["metadata"]["name"] == "traefik"]
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["loadBalancerClass"] == "service.k8s.aws/nlb", "the AWS Load Balancer Controller's"
    annotations = service["metadata"]["annotations"]
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing"
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"] == "ip"
    firewall = run.named("aws:ec2/securityGroup:SecurityGroup", "gateway-firewall")
    assert annotations["service.beta.kubernetes.io/aws-load-balancer-security-groups"] == f"{firewall.name}-id"
    assert [p["port"] for p in service["spec"]["ports"]] == [80]
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "traefik",
        "app.kubernetes.io/instance": "traefik-gateway-system",
    }, "the selector Traefik's chart gives its pods"
    (gateway,) = of_kind(objects, "Gateway")
    assert "hostname" not in gateway["spec"]["listeners"][0]
    (route,) = of_kind(objects, "HTTPRoute")
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "mlflow", "port": 5000}]


def test_claims_keep_their_volumes_through_the_storage_class_not_protect(run, objects):
    """Protected objects in the cluster would hold the cluster back from a quickstop."""
    (storage,) = of_kind(objects, "StorageClass")
    assert storage["reclaimPolicy"] == "Retain" and storage["parameters"] == {"type": "gp3", "encrypted": "true"}
    (claim,) = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == storage["metadata"]["name"]
    in_cluster = [r.name for r in run.resources if r.type.startswith("kubernetes:") and r.protect]
    assert in_cluster == []
    teardown = evaluate("dev", phase="platform", retainData="false")
    assert of_kind(manifests(teardown), "StorageClass")[0]["reclaimPolicy"] == "Delete"


def test_kubernetes_objects_are_schema_valid_and_checkov_clean(objects, checkov_reports):
    errors = schema_errors(objects)
    assert {k for k, v in errors.items() if v != "no schema"} == set()
    assert all(gateway_api_errors(o) == [] for o in objects if (o["apiVersion"], o["kind"]) in SUPPORTED)
    report = checkov_reports["dev:platform"]
    assert not report["failed"], [(f["check_id"], f["resource"]) for f in report["failed"]]


def test_cost_stays_under_the_target_and_the_kubeconfig_is_secret(run):
    assert run.outputs["estimatedHourlyCostUsd"] < TARGET_HOURLY_USD
    assert run.outputs["estimatedMonthlyCostUsd"] == pytest.approx(run.outputs["estimatedHourlyCostUsd"] * 730, 0.01)
    assert "kubeconfig" in run.secret_outputs
    assert set(run.outputs["costBreakdown"]) >= {"EKS control plane", "EC2 t3.medium spot", "Public IPv4 address"}


def test_a_nat_gateway_is_one_flag_and_shows_in_the_cost():
    with_nat = evaluate("dev", phase="platform", natGateway="true")
    assert len(with_nat.of_type("aws:ec2/natGateway:NatGateway")) == 1
    nat_hour = cost.PRICES["us-east-1"].nat_gateway_hour
    assert with_nat.outputs["costBreakdown"]["NAT gateway"] == pytest.approx(nat_hour)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"apiAllowedCidrs": ""}, "apiAllowedCidrs is not set"),
        ({"apiAllowedCidrs": "0.0.0.0/0"}, "must not open the API to everyone"),
        ({"apiAllowedCidrs": "203.0.113.300/32"}, "is not an IPv4 CIDR"),
        ({"vpcCidr": "10.0.0.0/8"}, "vpcCidr: 10.0.0.0/8 must be a /16 to /20"),
        ({"nodeMinSize": "3", "nodeMaxSize": "2"}, "min <= desired <= max, got min 3, desired 1, max 2"),
        ({"nodeInstanceType": "p5.48xlarge"}, "nodeInstanceType p5.48xlarge unknown to the cost model"),
        ({"nodeCapacityType": "RESERVED"}, "nodeCapacityType must be one of SPOT, ON_DEMAND"),
        ({"aws:region": "mars-east-1"}, "aws:region must be one of"),
    ],
    ids=["no-cidr", "open-cidr", "bad-cidr", "vpc-too-big", "min-over-max", "unknown-type", "capacity", "region"],
)
def test_invalid_platform_config_is_rejected_before_any_resource(overrides, expected):
    run = failed_stack("dev", overrides)
    assert expected in str(run.error)
    assert "fix: pulumi config set" in str(run.error)
    assert run.resources == []


def test_the_cluster_admin_is_the_setting_not_whoever_runs_the_program(monkeypatch):
    """A preview under CI's read-only role must not show the admin's access entry being replaced."""
    call = _Mocks.call

    def other_caller(self, args):
        result = call(self, args)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            result = {**result, "arn": "arn:aws:sts::123456789012:assumed-role/ci-preview/run-1"}
        return result

    monkeypatch.setattr(_Mocks, "call", other_caller)
    run = run_program(lambda: runpy.run_path(str(REPO / "__main__.py")), "dev", {"phase": "platform"})
    entry = run.raise_error().named("aws:eks/accessEntry:AccessEntry", "eks-admin")
    assert entry["principalArn"] == "arn:aws:iam::123456789012:role/lab-admin"


def admitted(run: ProgramRun) -> set[tuple[int, str]]:
    rules = run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    return {(rule["fromPort"], rule["cidrIpv4"]) for rule in rules if rule["securityGroupId"] == "gateway-firewall-id"}


def test_the_load_balancer_admits_only_the_operator_unless_opened_on_purpose(run):
    assert admitted(run) == {(80, "203.0.113.10/32")}, "the same CIDRs as the EKS API by default"
    opened = evaluate("dev", phase="platform", gatewayAllowedCidrs="198.51.100.0/24,0.0.0.0/0")
    assert admitted(opened) == {(80, "198.51.100.0/24"), (80, "0.0.0.0/0")}


def test_the_controller_reconciles_the_load_balancer_and_may_touch_only_its_own(run):
    controller = run.named("kubernetes:helm.sh/v3:Release", "aws-load-balancer-controller")
    assert (controller["chart"], controller["repositoryOpts"]["repo"]) == (
        "aws-load-balancer-controller",
        "https://aws.github.io/eks-charts",
    )
    values = controller["values"]
    assert values["clusterName"] == "llm-infra-lab-dev" and values["region"] == "us-east-1"
    assert values["vpcId"] == "network-vpc-id", "pods cannot ask the instance metadata (one hop)"
    assert values["enableServiceMutatorWebhook"] is False and values["createIngressClassResource"] is False
    role = run.named("aws:iam/role:Role", "aws-load-balancer-controller-irsa-role")
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:aws-load-balancer-controller" in trust.values()
    policy = json.loads(
        run.named("aws:iam/rolePolicy:RolePolicy", "aws-load-balancer-controller-irsa-policy")["policy"]
    )
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not {a for a in actions if a.split(":")[0] in ("wafv2", "waf-regional", "shield", "cognito-idp", "acm")}
    for statement in policy["Statement"]:
        writes = [a for a in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])]
        if any(a.split(":")[1].startswith(("Delete", "Modify", "Set")) for a in writes):
            assert statement.get("Condition") or "listener" in json.dumps(statement["Resource"]), statement["Sid"]


def test_the_load_balancer_goes_before_its_controller_and_its_firewall(run):
    """Pulumi deletes in reverse dependency order and waits for the Service's finalizer: the NLB is gone
    before the controller, the security group and the VPC are, so no destroy stops on DependencyViolation."""
    service = run.named("kubernetes:core/v1:Service", "traefik")
    controller = run.named("kubernetes:helm.sh/v3:Release", "aws-load-balancer-controller")
    firewall = run.named("aws:ec2/securityGroup:SecurityGroup", "gateway-firewall")
    assert controller.urn in service.dependencies
    assert firewall.urn in service.dependencies


def test_the_platform_fits_its_one_default_node(run, objects):
    """MLflow, Traefik and the load balancer controller beside the system pods on one t3.medium."""
    lab = sum(
        int(c["resources"]["requests"]["memory"].removesuffix("Mi")) for w in workloads(objects) for c in containers(w)
    )
    charts = sum(
        int(run.named("kubernetes:helm.sh/v3:Release", name)["values"]["resources"]["requests"]["memory"][:-2])
        for name in ("traefik", "aws-load-balancer-controller")
    )
    (nodes,) = run.of_type("aws:eks/nodeGroup:NodeGroup")
    assert nodes["scalingConfig"]["desiredSize"] == 1
    assert lab + charts <= NODE_ALLOCATABLE_MIB - SYSTEM_MIB_PER_NODE, f"{lab} + {charts} MiB"


def test_mlflow_behind_the_load_balancer_asks_for_a_password(run, objects):
    (mlflow,) = [w for w in workloads(objects) if w["metadata"]["name"] == "mlflow"]
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    assert "--app-name=basic-auth" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_AUTH_CONFIG_PATH"]["value"] == "/mlflow/auth/basic_auth.ini"
    for generated in ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert "secretKeyRef" in env[generated]["valueFrom"], f"{generated} comes from a Secret"
    (config,) = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("mlflow")]
    ini = configparser.ConfigParser()
    ini.read_string(next(iter(config["data"].values())))
    assert ini["mlflow"]["default_permission"] == "NO_PERMISSIONS", "nobody but the admin, until granted"
    assert ini["mlflow"]["database_uri"] == "sqlite:////mlflow/db/basic-auth.db", "on the claim: the root is read-only"
    assert "admin_password" not in ini["mlflow"], "the password is a secret, not a file in a ConfigMap"
    probe = container["readinessProbe"]["httpGet"]["path"]
    assert probe == "/health", "the one path basic-auth leaves open"
    assert run.outputs["mlflowUsername"] == "admin" and "mlflowPassword" in run.secret_outputs
    assert len(run.outputs["mlflowPassword"]) >= 12, "MLflow refuses a shorter admin password"
