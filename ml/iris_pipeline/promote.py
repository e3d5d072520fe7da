"""Stage `promote`: the gate between a trained candidate and the model that is served.

It first records the evaluation on the candidate's MLflow run: the held-out metrics (`test_…`), the
test data's DVC hash and the confusion plot. The candidate then takes the registered model's `champion`
alias only when its held-out metric (`promote.metric`) beats the current champion's by at least
`promote.margin`. Both are scored on this run's held-out split: the champion's model is loaded from the
registry and evaluated again, so a champion trained on an older split is still compared on the same
rows as the candidate.

Registration follows the decision: a promoted candidate becomes a new version of the registered model
(the registry lists the models that were champion, in order); a refused one stays a logged model of its
run, tagged with the decision. When the alias moves, `previous-champion` goes to the version that held
it, for a rollback (scripts/rollback.py). The decision and its reason go to reports/promotion.json, to
the run's tags and to stdout; the stage exits 0 either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from iris_pipeline import common
from iris_pipeline.evaluate import score

PROMOTED = "promoted"
REFUSED = "refused"
UNCHANGED = "unchanged"
TOLERANCE = 1e-9
"""Float noise below this does not decide anything."""
METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro")


@dataclass(frozen=True)
class Decision:
    decision: str
    reason: str

    @property
    def promoted(self) -> bool:
        return self.decision == PROMOTED


def decide(
    *,
    metric: str,
    margin: float,
    candidate: float,
    champion: float | None,
    champion_version: str | None = None,
    candidate_is_champion: bool = False,
) -> Decision:
    """The gate itself: promote without a champion, or when `candidate - champion >= margin`."""
    if candidate_is_champion:
        return Decision(UNCHANGED, f"the candidate is already the champion (version {champion_version})")
    if champion is None:
        return Decision(PROMOTED, f"no champion yet: the candidate's {metric} is {candidate:.4f}")
    gain = candidate - champion
    versus = (
        f"{metric} {candidate:.4f} against the champion's (version {champion_version}) {champion:.4f} "
        f"on the same held-out data: {gain:+.4f}, margin {margin:.4f}"
    )
    if gain + TOLERANCE >= margin:
        return Decision(PROMOTED, f"better by the margin: {versus}")
    if gain > TOLERANCE:
        return Decision(REFUSED, f"better, but by less than the margin: {versus}")
    if gain >= -TOLERANCE:
        return Decision(REFUSED, f"no better than the champion: {versus}")
    return Decision(REFUSED, f"worse than the champion: {versus}")


def validate(settings: dict[str, Any]) -> None:
    if settings["metric"] not in METRICS:
        raise SystemExit(f"promote.metric {settings['metric']!r} is not one of {', '.join(METRICS)}")
    if not 0 < float(settings["margin"]) < 1:
        raise SystemExit(f"promote.margin must be above 0 and below 1, got {settings['margin']}")
    if settings["alias"] == settings["previous_alias"]:
        raise SystemExit("promote.alias and promote.previous_alias must differ")


def current_champion(client: Any, name: str, alias: str) -> Any | None:
    """The version holding `alias`, or None when the model or the alias does not exist yet."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def model_id_of(version: Any) -> str | None:
    """The logged model behind a registered version (MLflow 3 registers `models:/<model_id>`)."""
    if getattr(version, "model_id", None):
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def champion_score(name: str, alias: str, metric: str) -> float:
    """The champion's `metric` on this run's held-out split, from its model in the registry."""
    model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    features, labels = common.read_split(common.path(common.TEST_CSV))
    return score(labels, model.predict(features))[metric]


def record_evaluation(client: Any, run: dict[str, str]) -> None:
    """The held-out metrics and the test data's DVC hash, on the training run and its logged model."""
    evaluation = common.read_json(common.path(common.METRICS))
    now = int(time.time() * 1000)
    metrics = [Metric(f"test_{name}", float(evaluation[name]), now, 0, model_id=run["model_id"]) for name in METRICS]
    client.log_batch(run["run_id"], metrics=metrics)
    client.set_tag(run["run_id"], common.TAG_TEST_MD5, common.md5(common.path(common.TEST_CSV)))
    client.log_artifact(run["run_id"], str(common.path(common.CONFUSION)), artifact_path="evaluation")


def main() -> None:
    settings = common.params()
    gate = settings["promote"]
    validate(gate)
    name, alias, previous_alias = settings["mlflow"]["registered_model"], gate["alias"], gate["previous_alias"]
    metric, margin = gate["metric"], float(gate["margin"])
    run = common.read_json(common.path(common.RUN_INFO))
    candidate_value = float(common.read_json(common.path(common.METRICS))[metric])

    mlflow.set_tracking_uri(common.tracking_uri())
    client = MlflowClient()
    record_evaluation(client, run)
    champion = current_champion(client, name, alias)
    champion_value = None
    candidate_is_champion = champion is not None and model_id_of(champion) == run["model_id"]
    if champion is not None and not candidate_is_champion:
        champion_value = champion_score(name, alias, metric)
    decision = decide(
        metric=metric,
        margin=margin,
        candidate=candidate_value,
        champion=champion_value,
        champion_version=champion.version if champion is not None else None,
        candidate_is_champion=candidate_is_champion,
    )

    version = champion.version if candidate_is_champion else None
    if decision.promoted:
        registered = mlflow.register_model(run["model_uri"], name)
        version = registered.version
        client.set_registered_model_alias(name, alias, version)
        if champion is not None:
            client.set_registered_model_alias(name, previous_alias, champion.version)
        client.set_model_version_tag(name, version, "promotion.reason", decision.reason)
        client.set_model_version_tag(name, version, f"promotion.{metric}", f"{candidate_value:.4f}")
        if champion is not None:
            client.set_model_version_tag(name, version, "promotion.replaced_version", champion.version)
    tags = {"promotion.decision": decision.decision, "promotion.reason": decision.reason}
    if version is not None:
        tags["promotion.version"] = str(version)
    for key, value in tags.items():
        client.set_tag(run["run_id"], key, value)
    client.set_logged_model_tags(run["model_id"], tags)

    aliases = {each: _alias_version(client, name, each) for each in (alias, previous_alias)}
    common.write_json(
        common.path(common.PROMOTION),
        {
            "decision": decision.decision,
            "promoted": decision.promoted,
            "reason": decision.reason,
            "registered_model": name,
            "metric": metric,
            "margin": margin,
            "candidate": {
                "run_id": run["run_id"],
                "model_id": run["model_id"],
                "value": candidate_value,
                "version": str(version) if version is not None else None,
            },
            "champion": None
            if champion is None
            else {
                "version": str(champion.version),
                "run_id": champion.run_id,
                "value": champion_value,
            },
            "aliases": aliases,
            "test_data_md5": common.md5(common.path(common.TEST_CSV)),
        },
    )
    print(f"promote: {decision.decision}: {decision.reason}")
    if decision.promoted:
        print(f"promote: {name} version {version} is now @{alias}")
    else:
        print(f"promote: @{alias} left as it was ({aliases[alias] or 'none'})")


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    version = current_champion(client, name, alias)
    return None if version is None else str(version.version)


if __name__ == "__main__":
    main()
