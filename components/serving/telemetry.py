"""What KServe's Python model servers report, as Mimir stores it: one name for the scrape and the dashboard."""

PREDICT_SECONDS = "request_predict_seconds"
"""The histogram of prediction latency, labelled `model_name` (kserve/metrics.py), on the server's port at /metrics."""
