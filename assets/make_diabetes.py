"""Writes assets/diabetes.json, the data set svr-etl embeds.

One JSON object per line in the layout of the Athena `data` table: the scaled
features exactly as scikit-learn's `load_diabetes()` returns them, the target as
`y_true`, and `is_train` from `train_test_split(range(442), test_size=0.2,
random_state=44, shuffle=True)`, the split the seed pipeline used.

    python3 assets/make_diabetes.py
"""

import json
import pathlib

from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def main() -> None:
    bunch = load_diabetes()
    assert list(bunch.feature_names) == FEATURES, bunch.feature_names
    n_rows = bunch.data.shape[0]
    train_ids, _ = train_test_split(
        range(n_rows), test_size=0.2, random_state=44, shuffle=True
    )
    train = set(train_ids)
    out = pathlib.Path(__file__).with_name("diabetes.json")
    with out.open("w") as f:
        for point_id in range(n_rows):
            row = {"point_id": point_id, "is_train": point_id in train}
            for name, value in zip(FEATURES, bunch.data[point_id]):
                row[name] = float(value)
            row["y_true"] = float(bunch.target[point_id])
            # json.dumps writes the shortest repr that round-trips, so the
            # Rust side reads back the very same f64 values.
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
