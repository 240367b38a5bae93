"""The answer model: the packaged trees load, agree with scikit-learn's own prediction, and refuse a
model fitted on other features."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from cohost.config import FEATURE_NAMES
from cohost.errors import ConfigError
from cohost.retrieval.decider import Decider, load_decider


def test_exported_trees_predict_what_sklearn_predicts():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 5))
    x[rng.random(x.shape) < 0.02] = np.nan          # missing values take the learned side
    y = ((np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) * np.nan_to_num(x[:, 2])) > 0.2).astype(int)
    model = HistGradientBoostingClassifier(max_iter=60, max_depth=4, random_state=0).fit(x, y)
    decider = Decider.from_sklearn(model, [f"f{i}" for i in range(5)])
    probe = rng.normal(size=(300, 5))
    probe[::17, 3] = np.nan
    assert np.allclose(decider.predict(probe), model.predict_proba(probe)[:, 1], atol=1e-9)
    again = Decider.from_json(json.loads(json.dumps(decider.to_json())))
    assert np.allclose(again.predict(probe), decider.predict(probe))


def test_packaged_model_loads_and_scores_in_range():
    decider = load_decider(None, FEATURE_NAMES)
    p = decider.predict(np.zeros((3, len(FEATURE_NAMES))))
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


def test_a_model_for_other_features_is_refused(tmp_path):
    other = Decider(["a", "b"], 0.0, [])
    path = tmp_path / "m.json"
    path.write_text(json.dumps(other.to_json()), encoding="utf-8")
    with pytest.raises(ConfigError, match="refit"):
        load_decider(path, FEATURE_NAMES)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot load"):
        load_decider(path, FEATURE_NAMES)


def test_wrong_width_is_an_error():
    decider = load_decider(None, FEATURE_NAMES)
    with pytest.raises(ValueError):
        decider.predict(np.zeros((2, 3)))
