"""The answer/abstain model: gradient-boosted trees over a candidate's match features.

Fitted by benchmarks/calibrate.py on several sample shops and half of a public question-matching
corpus, and shipped as plain JSON (decider.json beside this file): no pickle, so it loads under any
scikit-learn version or none. Prediction walks every tree at once with numpy, one step per tree level,
so scoring a message's candidates costs tens of microseconds, not a Python loop per node.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

DEFAULT_MODEL = "decider.json"


class Decider:
    """P(this candidate is the answer | its features), for candidates of one message at a time."""

    def __init__(self, features: Sequence[str], baseline: float, trees: list[dict[str, list]]):
        self.features = tuple(features)
        self.baseline = float(baseline)
        self._trees = trees
        width = max(len(t["feature"]) for t in trees) if trees else 1
        n = len(trees)
        # Padded node tables, one row per tree; a leaf points at itself so extra steps stay put.
        self._feature = np.zeros((n, width), np.int64)
        self._threshold = np.zeros((n, width), np.float64)
        self._left = np.zeros((n, width), np.int64)
        self._right = np.zeros((n, width), np.int64)
        self._value = np.zeros((n, width), np.float64)
        self._missing_left = np.zeros((n, width), bool)
        depth = 1
        for i, t in enumerate(trees):
            k = len(t["feature"])
            leaf = np.asarray(t["leaf"], bool)
            idx = np.arange(k)
            self._feature[i, :k] = t["feature"]
            self._threshold[i, :k] = t["threshold"]
            self._left[i, :k] = np.where(leaf, idx, t["left"])
            self._right[i, :k] = np.where(leaf, idx, t["right"])
            self._value[i, :k] = t["value"]
            self._missing_left[i, :k] = t["missing_left"]
            self._threshold[i, :k][leaf] = np.inf  # a leaf sends every row "left", to itself
            depth = max(depth, int(t.get("depth", k)))
        self._depth = depth
        self._rows = np.arange(n)[:, None]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for rows of features (candidates, len(features))."""
        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected (n, {len(self.features)}) features, got {x.shape}")
        node = np.zeros((len(self._feature), len(x)), np.int64)
        cols = np.arange(len(x))[None, :]
        for _ in range(self._depth):
            f = self._feature[self._rows, node]
            v = x[cols, f]
            at = (self._rows, node)
            go_left = np.where(np.isnan(v), self._missing_left[at], v <= self._threshold[at])
            node = np.where(go_left, self._left[self._rows, node], self._right[self._rows, node])
        raw = self.baseline + self._value[self._rows, node].sum(axis=0)
        return 1.0 / (1.0 + np.exp(-np.clip(raw, -50.0, 50.0)))

    # -- files ----------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "baseline": self.baseline, "trees": self._trees}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Decider:
        return cls(data["features"], data["baseline"], data["trees"])

    @classmethod
    def from_sklearn(cls, model: Any, features: Sequence[str]) -> Decider:
        """Export a fitted binary HistGradientBoostingClassifier."""
        trees = []
        for (predictor,) in model._predictors:
            nodes = predictor.nodes
            depth = int(nodes["depth"].max()) + 1
            trees.append({"feature": nodes["feature_idx"].astype(int).tolist(),
                          "threshold": nodes["num_threshold"].astype(float).tolist(),
                          "left": nodes["left"].astype(int).tolist(), "right": nodes["right"].astype(int).tolist(),
                          "value": nodes["value"].astype(float).tolist(),
                          "missing_left": nodes["missing_go_to_left"].astype(bool).tolist(),
                          "leaf": nodes["is_leaf"].astype(bool).tolist(), "depth": depth})
        return cls(features, float(np.ravel(model._baseline_prediction)[0]), trees)


def load_decider(path: Path | None, features: Sequence[str]) -> Decider:
    """The packaged model, or a model file fitted by benchmarks/calibrate.py; its features must be ours."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath(DEFAULT_MODEL).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        decider = Decider.from_json(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot load the answer model {path or DEFAULT_MODEL}: {e}") from e
    if decider.features != tuple(features):
        raise ConfigError(f"the answer model {path or DEFAULT_MODEL} was fitted on features {decider.features}, "
                          f"not {tuple(features)}: refit it with benchmarks/calibrate.py")
    return decider
