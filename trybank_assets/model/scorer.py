"""Scores one transaction's features without Spark, from the registry's ``scorer.json``.

Logistic regression: the StandardScaler is folded into the coefficients, so
p = 1 / (1 + exp(-(intercept + sum(w_i * x_i)))). Gradient-boosted trees: each tree is four
arrays (feature, threshold, left, right; a leaf has feature -1 and its value in ``value``);
p = 1 / (1 + exp(-2 * sum(weight_t * tree_t(x)))), as Spark's logistic-loss GBT computes it.
"""

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class LogisticScorer:
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def probability(self, x: Sequence[float]) -> float:
        return _sigmoid(self.intercept + sum(w * v for w, v in zip(self.coefficients, x, strict=True)))

    def contributions(self, x: Sequence[float]) -> dict[str, float]:
        """Each feature's share of the margin (its coefficient times its value)."""
        return {name: w * v for name, w, v in zip(self.features, self.coefficients, x, strict=True)}


@dataclass(frozen=True)
class Tree:
    feature: tuple[int, ...]
    threshold: tuple[float, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    value: tuple[float, ...]

    def predict(self, x: Sequence[float]) -> float:
        node = 0
        while self.feature[node] >= 0:
            node = self.left[node] if x[self.feature[node]] <= self.threshold[node] else self.right[node]
        return self.value[node]


@dataclass(frozen=True)
class TreeEnsembleScorer:
    features: tuple[str, ...]
    trees: tuple[Tree, ...]
    weights: tuple[float, ...]

    def probability(self, x: Sequence[float]) -> float:
        margin = sum(w * t.predict(x) for w, t in zip(self.weights, self.trees, strict=True))
        return _sigmoid(2.0 * margin)

    def contributions(self, x: Sequence[float]) -> dict[str, float]:
        """Per feature, the summed change of node value along each tree's decision path (Saabas)."""
        out = dict.fromkeys(self.features, 0.0)
        for weight, tree in zip(self.weights, self.trees, strict=True):
            node = 0
            while tree.feature[node] >= 0:
                f = tree.feature[node]
                child = tree.left[node] if x[f] <= tree.threshold[node] else tree.right[node]
                out[self.features[f]] += weight * (tree.value[child] - tree.value[node])
                node = child
        return out


Scorer = LogisticScorer | TreeEnsembleScorer


def scorer_from_dict(spec: dict) -> Scorer:
    features = tuple(spec["features"])
    if spec["kind"] == "logistic_regression":
        return LogisticScorer(features, tuple(spec["coefficients"]), float(spec["intercept"]))
    if spec["kind"] == "gradient_boosted_trees":
        trees = tuple(
            Tree(*(tuple(t[k]) for k in ("feature", "threshold", "left", "right", "value"))) for t in spec["trees"]
        )
        return TreeEnsembleScorer(features, trees, tuple(spec["weights"]))
    raise ValueError(f"unknown scorer kind {spec['kind']!r}")


def load_scorer(path: Path) -> Scorer:
    return scorer_from_dict(json.loads(path.read_text()))
