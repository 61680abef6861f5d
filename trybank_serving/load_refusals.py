"""Models and online stores that serving refused to load, for /ready, /model, metrics and the log.

A refused file leaves the last good one serving. The watcher looks at the same broken file every
poll, so a refusal is counted and logged once per distinct file and reason, not once per look.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from trybank_serving.metrics import REFUSED_LOADS

log = logging.getLogger("trybank_serving")


class InvalidArtefact(ValueError):
    """A model or online store that must not serve; the message says why."""


@dataclass(frozen=True)
class Refusal:
    source: str  # the model version or store file
    reason: str
    at: str  # when it was first refused (UTC, ISO-8601)


class LoadRefusals:
    """The last refusal of one kind of artefact, until a good one loads."""

    def __init__(self, artefact: str) -> None:
        self.artefact = artefact
        self.last: Refusal | None = None

    def refuse(self, source: str, error: Exception) -> None:
        reason = str(error) if isinstance(error, InvalidArtefact) else f"{type(error).__name__}: {error}"
        if self.last is not None and (self.last.source, self.last.reason) == (source, reason):
            return
        self.last = Refusal(source, reason, datetime.now(UTC).isoformat())
        REFUSED_LOADS.labels(self.artefact).inc()
        log.error("refused the %s %s (the last good one keeps serving): %s", self.artefact, source, reason)

    def clear(self) -> None:
        self.last = None
