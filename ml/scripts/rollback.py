"""Give `champion` back to the version that held it before the last promotion.

    MLFLOW_TRACKING_URI=$(pulumi stack output mlflowUrl) python scripts/rollback.py

The two aliases swap: `champion` goes to the `previous-champion` version and `previous-champion` to the
version rolled back from, so running it twice undoes the rollback. The model server keeps serving what
it was deployed with until the stack is updated with the new champion's storage URI (scripts/model_uri.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="iris-classifier", help="registered model name")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--previous-alias", default="previous-champion")
    args = parser.parse_args(argv)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        parser.error("set MLFLOW_TRACKING_URI (pulumi stack output mlflowUrl, or the sqlite:/// store)")

    client = MlflowClient()
    try:
        current = client.get_model_version_by_alias(args.model, args.alias)
        previous = client.get_model_version_by_alias(args.model, args.previous_alias)
    except MlflowException as error:
        print(f"nothing to roll back to: {error.message}", file=sys.stderr)
        return 1
    client.set_registered_model_alias(args.model, args.alias, previous.version)
    client.set_registered_model_alias(args.model, args.previous_alias, current.version)
    client.set_model_version_tag(args.model, previous.version, "rollback.from_version", current.version)
    print(
        f"{args.model}: @{args.alias} is version {previous.version} again "
        f"(@{args.previous_alias} is now version {current.version})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
