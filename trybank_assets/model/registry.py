"""The model registry on the lake: ``models/fraud_model/<version>/`` plus an atomic ``current``.

A version folder is written under a temporary name and renamed into place whole; ``current`` is
a symlink replaced with ``os.replace``, so a reader sees the old or the new champion, never half.
"""

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

CURRENT = "current"
PROMOTIONS = "promotions.jsonl"
FINALISTS = "finalists"  # <version>/finalists/<algorithm>/: every family's refitted model, scorer, metrics


def new_version(fingerprint: dict) -> str:
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{digest}"


def staging_dir(registry: Path, version: str) -> Path:
    path = registry / f".staging-{version}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def publish(registry: Path, staging: Path, version: str) -> Path:
    final = registry / version
    os.rename(staging, final)
    return final


def current_version(registry: Path) -> str | None:
    link = registry / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def read_metrics(registry: Path, version: str) -> dict:
    return json.loads((registry / version / "metrics.json").read_text())


def read_baseline(registry: Path, version: str) -> dict | None:
    """The version's test-window distributions (``model.drift``); None for versions trained without one."""
    path = registry / version / "baseline.json"
    return json.loads(path.read_text()) if path.is_file() else None


def promote(registry: Path, version: str, reason: dict) -> str | None:
    """Point ``current`` at ``version`` atomically; returns the previous champion."""
    if not (registry / version / "scorer.json").is_file():
        raise FileNotFoundError(f"{registry / version} is not a complete model version")
    previous = current_version(registry)
    tmp = registry / f".{CURRENT}.tmp-{os.getpid()}"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(version, tmp)
    os.replace(tmp, registry / CURRENT)
    record = {"version": version, "previous": previous, "at": datetime.now(UTC).isoformat(), **reason}
    with open(registry / PROMOTIONS, "a") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return previous
