"""Stage `train`: fit the classifier and record it as an MLflow run with its logged model.

The run gets the parameters, the training accuracy, the git commit and the training data's DVC hash;
the model is logged in the sklearn flavor with its signature and an input example, pickled (not skops)
as `model.pkl`, which is the file KServe's sklearnserver loads. The run's ids go to models/run.json for
the later stages.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import joblib
import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from iris_pipeline import common

ESTIMATORS = ("logistic_regression", "decision_tree")


def build(settings: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The estimator `train.estimator` names, and the hyperparameters it was given."""
    estimator = settings["estimator"]
    if estimator == "logistic_regression":
        hyper = {"C": float(settings["C"]), "max_iter": int(settings["max_iter"])}
        return LogisticRegression(**hyper), hyper
    if estimator == "decision_tree":
        hyper = {"max_depth": int(settings["max_depth"]), "random_state": int(settings["seed"])}
        return DecisionTreeClassifier(**hyper), hyper
    raise SystemExit(f"train.estimator {estimator!r} is not one of {', '.join(ESTIMATORS)}")


def requirements() -> list[str]:
    """The model's runtime packages at the versions it was trained with."""
    return [f"{package}=={version(package)}" for package in ("scikit-learn", "numpy", "scipy", "joblib")]


def main() -> None:
    settings = common.params()
    model, hyper = build(settings["train"])
    features, labels = common.read_split(common.path(common.TRAIN_CSV))
    model.fit(features, labels)
    train_accuracy = float(model.score(features, labels))

    model_file = common.path(common.MODEL)
    model_file.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, model_file)

    mlflow.set_tracking_uri(common.tracking_uri())
    mlflow.set_experiment(settings["mlflow"]["experiment"])
    estimator = settings["train"]["estimator"]
    git = common.git_state()
    with mlflow.start_run(run_name=f"{estimator}-{git[common.TAG_GIT_COMMIT][:8]}") as run:
        mlflow.log_params(
            {
                "estimator": estimator,
                **hyper,
                "data.test_size": settings["data"]["test_size"],
                "data.seed": settings["data"]["seed"],
                "experiment": settings["mlflow"]["experiment"],
                "registered_model": settings["mlflow"]["registered_model"],
            }
        )
        mlflow.set_tags(
            {
                **git,
                "mlflow.source.git.commit": git[common.TAG_GIT_COMMIT],
                common.TAG_TRAIN_MD5: common.md5(common.path(common.TRAIN_CSV)),
                "dvc.stage": "train",
            }
        )
        logged = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
            signature=infer_signature(features, model.predict(features)),
            input_example=features[:3],
            # What the model needs, stated: inferring it re-imports the model in a subprocess (seconds).
            pip_requirements=requirements(),
        )
        mlflow.log_metric("train_accuracy", train_accuracy, model_id=logged.model_id)
    common.write_json(
        common.path(common.RUN_INFO),
        {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "model_id": logged.model_id,
            "model_uri": logged.model_uri,
        },
    )
    print(f"train: {estimator} {hyper}, training accuracy {train_accuracy:.4f}, run {run.info.run_id}")


if __name__ == "__main__":
    main()
