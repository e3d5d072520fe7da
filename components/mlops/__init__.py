DVC_PREFIX = "dvc"
"""Where DVC keeps its cache in the lab's artifact bucket, beside MLflow's prefix (minikube's MinIO or S3)."""
