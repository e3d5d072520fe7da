"""The policy pack: `pulumi preview --policy-pack policies` runs this file."""

from llm_infra_lab_policies import PACK_NAME, POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack(
    name=PACK_NAME,
    policies=POLICIES,
    enforcement_level=EnforcementLevel.MANDATORY,
    description="LLM Infra Lab guardrails: pinned images, memory limits, private and retained data, "
    "least-privilege IAM, closed EKS endpoint, no anonymous Grafana.",
)
