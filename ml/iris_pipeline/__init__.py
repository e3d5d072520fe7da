"""An iris classifier as a DVC pipeline: prepare → train → evaluate → promote, tracked in MLflow."""
