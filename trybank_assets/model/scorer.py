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

    def explain(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """The probability, and each feature's share of the margin (coefficient times value)."""
        contributions = [w * v for w, v in zip(self.coefficients, x, strict=True)]
        return self.probability(x), contributions


# A node is (feature, threshold, left, right, value); a leaf has feature -1.
Node = tuple[int, float, int, int, float]


@dataclass(frozen=True)
class TreeEnsembleScorer:
    features: tuple[str, ...]
    trees: tuple[tuple[Node, ...], ...]
    weights: tuple[float, ...]

    def probability(self, x: Sequence[float]) -> float:
        margin = 0.0
        for weight, nodes in zip(self.weights, self.trees, strict=True):
            node = nodes[0]
            while node[0] >= 0:
                node = nodes[node[2]] if x[node[0]] <= node[1] else nodes[node[3]]
            margin += weight * node[4]
        return _sigmoid(2.0 * margin)

    def explain(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """The probability, and per feature the weighted change of node value along each decision
        path (Saabas), in one walk of the trees."""
        contributions = [0.0] * len(self.features)
        margin = 0.0
        for weight, nodes in zip(self.weights, self.trees, strict=True):
            feature, threshold, left, right, value = nodes[0]
            while feature >= 0:
                child = nodes[left] if x[feature] <= threshold else nodes[right]
                contributions[feature] += weight * (child[4] - value)
                feature, threshold, left, right, value = child
            margin += weight * value
        return _sigmoid(2.0 * margin), contributions


Scorer = LogisticScorer | TreeEnsembleScorer


def scorer_from_dict(spec: dict) -> Scorer:
    features = tuple(spec["features"])
    if spec["kind"] == "logistic_regression":
        return LogisticScorer(features, tuple(spec["coefficients"]), float(spec["intercept"]))
    if spec["kind"] == "gradient_boosted_trees":
        trees = tuple(
            tuple(zip(t["feature"], t["threshold"], t["left"], t["right"], t["value"], strict=True))
            for t in spec["trees"]
        )
        return TreeEnsembleScorer(features, trees, tuple(spec["weights"]))
    raise ValueError(f"unknown scorer kind {spec['kind']!r}")


def load_scorer(path: Path) -> Scorer:
    return scorer_from_dict(json.loads(path.read_text()))
