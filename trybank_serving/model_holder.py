"""The champion model in memory, swapped when ``models/fraud_model/current`` moves.

A request takes ``holder.current`` once and scores with it to the end, so a swap never changes
a model under a request in flight; the swap itself is one reference assignment.
"""

import json
import operator
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from trybank_assets.features import FEATURE_NAMES, FEATURES
from trybank_assets.model.scorer import Scorer, load_scorer

_DESCRIPTIONS = tuple(f.description for f in FEATURES)
_feature_vector = operator.itemgetter(*FEATURE_NAMES)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    scorer: Scorer
    threshold: float
    metrics: dict
    loaded_at: str

    def score(self, features: dict[str, float], top: int = 3) -> tuple[float, list[dict]]:
        """Probability, and the ``top`` features that pushed it up most, in words."""
        probability, contributions = self.scorer.explain(_feature_vector(features))
        # A reverse sort is still stable: equal contributions keep feature order.
        ranked = sorted(range(len(contributions)), key=contributions.__getitem__, reverse=True)[:top]
        reasons = [
            {
                "feature": FEATURE_NAMES[i],
                "value": features[FEATURE_NAMES[i]],
                "contribution": contributions[i],
                "description": _DESCRIPTIONS[i],
            }
            for i in ranked
        ]
        return probability, reasons


def load_version(registry: Path, version: str) -> LoadedModel:
    folder = registry / version
    metrics = json.loads((folder / "metrics.json").read_text())
    scorer = load_scorer(folder / "scorer.json")
    if scorer.features != FEATURE_NAMES:
        raise ValueError(f"model {version} was trained on other features: {scorer.features}")
    return LoadedModel(version, scorer, float(metrics["threshold"]), metrics, datetime.now(UTC).isoformat())


class ModelHolder:
    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self.current: LoadedModel | None = None
        self._lock = threading.Lock()

    def _pointer(self) -> str | None:
        link = self.registry / "current"
        return os.readlink(link) if link.is_symlink() else None

    def refresh(self) -> bool:
        """Load the version ``current`` points at if it is not the one in memory; True if swapped."""
        with self._lock:
            version = self._pointer()
            if version is None or (self.current is not None and self.current.version == version):
                return False
            self.current = load_version(self.registry, version)
            return True
