"""Where a registered model version's files are stored: the URI to give KServe's storageUri.

    MLFLOW_TRACKING_URI=$(pulumi stack output mlflowUrl) \\
      python scripts/model_uri.py --alias champion \\
        --artifacts-destination "s3://$(pulumi stack output artifactBucket)/mlflow"
    # s3://<bucket>/mlflow/<experiment id>/models/<model id>/artifacts

MLflow 3 registers a logged model (`models:/<model id>`), whose files lie under the experiment's
artifact root at `<root>/<experiment id>/models/<model id>/artifacts/`: model.pkl beside MLmodel,
the environment files and the input example. The lab's server proxies artifacts (`--serve-artifacts`),
so it reports them as `mlflow-artifacts:/…`; `--artifacts-destination` (the server's
`--artifacts-destination`, `s3://<bucket>/mlflow` in the lab) turns that into the bucket's URI. A local
store (`sqlite:///…` with files on disk) reports a path, printed as it is.

Before printing, the script lists the directory through MLflow and checks that it holds exactly one
file KServe's sklearnserver loads (*.joblib, *.pkl or *.pickle at the top level); `--json` prints the
version, its ids, the URI, and the bucket and key prefix an IAM policy must let the server read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.artifacts import list_artifacts

KSERVE_MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")
"""What kserve/sklearnserver v0.20.0 loads (sklearnserver/model.py): exactly one such file in the model dir."""
PROXY_SCHEME = "mlflow-artifacts"


def storage_uri(artifact_uri: str, destination: str | None) -> str:
    """`artifact_uri` where the files really are: a proxied `mlflow-artifacts:` URI mapped onto `destination`."""
    parsed = urlparse(artifact_uri)
    if parsed.scheme != PROXY_SCHEME:
        return artifact_uri
    if not destination:
        raise SystemExit(
            f"{artifact_uri} is served by the MLflow server's artifact proxy: pass --artifacts-destination "
            '(the server\'s, "s3://$(pulumi stack output artifactBucket)/mlflow" in the lab)'
        )
    return f"{destination.rstrip('/')}/{parsed.path.lstrip('/')}"


def bucket_and_prefix(uri: str) -> tuple[str | None, str | None]:
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "gs"):
        return None, None
    return parsed.netloc, parsed.path.strip("/")


def resolve(client: object, name: str, alias: str | None, version: str | None) -> object:
    if alias:
        return client.get_model_version_by_alias(name, alias)
    return client.get_model_version(name, version)


def model_files(artifact_uri: str) -> list[str]:
    """The top-level files KServe's sklearnserver would consider, listed through MLflow."""
    entries = list_artifacts(artifact_uri=artifact_uri)
    return sorted(
        os.path.basename(entry.path)
        for entry in entries
        if not entry.is_dir and entry.path.endswith(KSERVE_MODEL_EXTENSIONS)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="iris-classifier", help="registered model name")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--alias", help="an alias, e.g. champion or previous-champion (the default: champion)")
    which.add_argument("--version", help="a version number")
    parser.add_argument(
        "--artifacts-destination",
        default=os.environ.get("MLFLOW_ARTIFACTS_DESTINATION"),
        help="the server's --artifacts-destination, for proxied artifacts (env MLFLOW_ARTIFACTS_DESTINATION)",
    )
    parser.add_argument("--json", action="store_true", help="print the details as JSON")
    args = parser.parse_args(argv)
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        parser.error("set MLFLOW_TRACKING_URI (pulumi stack output mlflowUrl, or the sqlite:/// store)")
    alias = args.alias or (None if args.version else "champion")
    client = MlflowClient()
    model_version = resolve(client, args.model, alias, args.version)
    artifact_uri = client.get_model_version_download_uri(args.model, model_version.version)
    files = model_files(artifact_uri)
    if len(files) != 1:
        print(
            f"{args.model} version {model_version.version}: {artifact_uri} holds {files or 'no'} "
            f"{'/'.join(KSERVE_MODEL_EXTENSIONS)} file(s); KServe's sklearnserver needs exactly one",
            file=sys.stderr,
        )
        return 1
    uri = storage_uri(artifact_uri, args.artifacts_destination)
    if not args.json:
        print(uri)
        return 0
    bucket, prefix = bucket_and_prefix(uri)
    print(
        json.dumps(
            {
                "name": args.model,
                "version": str(model_version.version),
                "aliases": sorted(model_version.aliases),
                "run_id": model_version.run_id,
                "source": model_version.source,
                "artifact_uri": artifact_uri,
                "storage_uri": uri,
                "model_file": files[0],
                "bucket": bucket,
                "prefix": prefix,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
