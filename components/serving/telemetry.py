"""What KServe's Python model servers report, as Mimir stores it: one name for the scrape and the dashboard."""

PREDICT_SECONDS = "request_predict_seconds"
"""The histogram of prediction latency, on the server's port at /metrics."""
MODEL_LABEL = "model_name"
"""The label naming the served model on PREDICT_SECONDS (kserve/metrics.py)."""
