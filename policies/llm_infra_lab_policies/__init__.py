"""CrossGuard policies for the LLM Infra Lab; `policies/__main__.py` serves them as a pack."""

from .aws import AWS_POLICIES
from .retention import RETENTION_POLICIES
from .workloads import WORKLOAD_POLICIES

PACK_NAME = "llm-infra-lab"
POLICIES = [*WORKLOAD_POLICIES, *AWS_POLICIES, *RETENTION_POLICIES]

__all__ = ["PACK_NAME", "POLICIES"]
