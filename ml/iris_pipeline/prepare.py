"""Stage `prepare`: scikit-learn's bundled iris data, split into train and held-out test sets.

The split is stratified and seeded (`data.seed`), so the same parameters give byte-identical files,
the same DVC hashes, and the same held-out set for every candidate the promotion gate compares.
"""

from __future__ import annotations

from sklearn.datasets import load_iris
from sklearn.model_selection import train_test_split

from iris_pipeline import common


def main() -> None:
    settings = common.params()["data"]
    iris = load_iris()
    if tuple(iris.target_names) != common.SPECIES:
        raise SystemExit(f"unexpected iris classes {list(iris.target_names)}")
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data,
        iris.target,
        test_size=settings["test_size"],
        random_state=settings["seed"],
        stratify=iris.target,
    )
    common.write_split(common.path(common.TRAIN_CSV), x_train, y_train)
    common.write_split(common.path(common.TEST_CSV), x_test, y_test)
    print(f"prepare: {len(y_train)} training rows, {len(y_test)} held-out rows")


if __name__ == "__main__":
    main()
