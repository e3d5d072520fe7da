"""Runs in MLflow's image before its server (minikube): the artifact bucket exists, or is created, once the
object store answers. Read as text and passed to `python -c`: the image has no copy of this repository."""

import os
import time

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError

bucket = os.environ["ARTIFACT_BUCKET"]
s3 = boto3.client("s3", endpoint_url=os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
for _attempt in range(60):
    try:
        s3.head_bucket(Bucket=bucket)
        break
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=bucket)
        break
    except EndpointConnectionError:
        time.sleep(2)
else:
    raise SystemExit(f"object store unreachable at {s3.meta.endpoint_url}")
print(f"artifact bucket {bucket} ready")
