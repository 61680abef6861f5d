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
from trybank_assets.model.scorer import Scorer, scorer_from_dict
from trybank_serving.load_refusals import InvalidArtefact, LoadRefusals

_feature_vector = operator.itemgetter(*FEATURE_NAMES)
# Below this share of the log-odds a feature did not move the score in any way worth saying.
MIN_REASON_CONTRIBUTION = 0.05


@dataclass(frozen=True)
class LoadedModel:
    version: str
    scorer: Scorer
    threshold: float
    metrics: dict
    loaded_at: str

    def score(self, features: dict[str, float], top: int = 3) -> tuple[float, list[dict]]:
        """Probability, and up to ``top`` features that pushed it up most, as codes and sentences;
        a feature whose contribution is negligible is not a reason."""
        probability, contributions = self.scorer.explain(_feature_vector(features))
        # A reverse sort is still stable: equal contributions keep feature order.
        ranked = sorted(range(len(contributions)), key=contributions.__getitem__, reverse=True)[:top]
        reasons = [
            {
                "code": FEATURES[i].code,
                "text": FEATURES[i].explain(features),
                "feature": FEATURE_NAMES[i],
                "value": features[FEATURE_NAMES[i]],
                "contribution": contributions[i],
            }
            for i in ranked
            if contributions[i] >= MIN_REASON_CONTRIBUTION
        ]
        return probability, reasons


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidArtefact(f"{path.name} is unreadable: {exc}") from exc
    if not isinstance(value, dict) or not value:
        raise InvalidArtefact(f"{path.name} is empty")
    return value


def load_version(registry: Path, version: str) -> LoadedModel:
    """Load and check a registry version: both files readable, every field there, and a score that
    is a probability."""
    folder = registry / version
    metrics = _read_json(folder / "metrics.json")
    spec = _read_json(folder / "scorer.json")
    try:
        scorer = scorer_from_dict(spec)
    except KeyError as exc:
        raise InvalidArtefact(f"scorer.json has no {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidArtefact(f"scorer.json is malformed: {exc}") from exc
    if scorer.features != FEATURE_NAMES:
        raise InvalidArtefact(f"model {version} was trained on other features: {scorer.features}")
    try:
        threshold = float(metrics["threshold"])
        probability, _ = scorer.explain([0.0] * len(FEATURE_NAMES))
    except KeyError as exc:
        raise InvalidArtefact(f"metrics.json has no {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidArtefact(f"model {version} does not score: {exc}") from exc
    if not (0.0 <= threshold <= 1.0 and 0.0 <= probability <= 1.0):
        raise InvalidArtefact(f"model {version} gives threshold {threshold} and probability {probability}")
    return LoadedModel(version, scorer, threshold, metrics, datetime.now(UTC).isoformat())


def _stamp(folder: Path) -> tuple:
    """What changes when a version's files are rewritten: a refused version is tried again then."""
    stamps = []
    for name in ("metrics.json", "scorer.json"):
        try:
            stat = (folder / name).stat()
            stamps.append((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return (folder.name, *stamps)


class ModelHolder:
    def __init__(self, registry: Path) -> None:
        self.registry = registry
        self.current: LoadedModel | None = None
        self.refusals = LoadRefusals("model")
        self._refused_stamp: tuple | None = None
        self._lock = threading.Lock()

    def _pointer(self) -> str | None:
        link = self.registry / "current"
        return os.readlink(link) if link.is_symlink() else None

    def refresh(self) -> bool:
        """Load the version ``current`` points at if it is not the one in memory; True if swapped.
        A version that fails its checks is refused (once per state of its files) and the model in
        memory keeps serving."""
        with self._lock:
            version = self._pointer()
            if version is None:
                return False
            if self.current is not None and self.current.version == version:
                self.refusals.clear()  # ``current`` is back on the model serving: nothing is pending
                self._refused_stamp = None
                return False
            stamp = _stamp(self.registry / version)
            if stamp == self._refused_stamp:
                return False
            try:
                self.current = load_version(self.registry, version)
            except Exception as exc:
                self._refused_stamp = stamp
                self.refusals.refuse(version, exc)
                return False
            self._refused_stamp = None
            self.refusals.clear()
            return True
