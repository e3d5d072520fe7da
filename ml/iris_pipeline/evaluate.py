"""Stage `evaluate`: score the trained model on the held-out split; metrics and a confusion plot.

metrics.json and plots/confusion.csv are kept in git (`dvc metrics diff`, `dvc plots diff`). The stage
needs no MLflow: `promote` records these numbers on the training run (prefixed `test_`) before its gate.
"""

from __future__ import annotations

import csv
from typing import Any

import joblib
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from iris_pipeline import common

DECIMALS = 4


def score(labels: Any, predictions: Any) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(labels, predictions)), DECIMALS),
        "f1_macro": round(float(f1_score(labels, predictions, average="macro")), DECIMALS),
        "precision_macro": round(float(precision_score(labels, predictions, average="macro")), DECIMALS),
        "recall_macro": round(float(recall_score(labels, predictions, average="macro")), DECIMALS),
    }


def main() -> None:
    model = joblib.load(common.path(common.MODEL))
    features, labels = common.read_split(common.path(common.TEST_CSV))
    predictions = model.predict(features)
    metrics = score(labels, predictions)
    common.write_json(common.path(common.METRICS), {**metrics, "test_rows": len(labels)})

    confusion = common.path(common.CONFUSION)
    confusion.parent.mkdir(parents=True, exist_ok=True)
    with open(confusion, "w", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows((common.SPECIES[a], common.SPECIES[p]) for a, p in zip(labels, predictions, strict=True))
    print("evaluate: " + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))


if __name__ == "__main__":
    main()
