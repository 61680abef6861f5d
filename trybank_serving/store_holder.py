"""The online store in memory, swapped when the store file is replaced, after checks.

A store that cannot be read, lacks a table or its ``as_of``, holds no customer or no terminal, or
is older than ``TRYBANK_STORE_MAX_AGE_DAYS`` is refused: it would score every transaction as a
newcomer's (an empty store once turned a 0.97 decline into a 0.67 approve). The store in memory
keeps serving, and the same file is not read again until it changes.
"""

from datetime import UTC, date, datetime
from pathlib import Path

from trybank_assets.online_store import OnlineSnapshot, load_snapshot
from trybank_serving.load_refusals import InvalidArtefact, LoadRefusals
from trybank_serving.online_features import OnlineFeatures


def check_snapshot(snapshot: OnlineSnapshot, max_age_days: float | None, today: date) -> None:
    if not snapshot.customers:
        raise InvalidArtefact(f"the store as of {snapshot.as_of} holds no customer")
    if not snapshot.terminals:
        raise InvalidArtefact(f"the store as of {snapshot.as_of} holds no terminal")
    age = (today - snapshot.as_of).days
    if age < 0:
        raise InvalidArtefact(f"the store is as of {snapshot.as_of}, after today ({today})")
    if max_age_days is not None and age > max_age_days:
        raise InvalidArtefact(
            f"the store is as of {snapshot.as_of}, {age} days old; TRYBANK_STORE_MAX_AGE_DAYS is {max_age_days:g}"
        )


class OnlineStoreHolder:
    def __init__(self, path: Path, max_age_days: float | None, cache_size: int) -> None:
        self.path = path
        self.max_age_days = max_age_days
        self.cache_size = cache_size
        self.current: OnlineFeatures | None = None
        self.refusals = LoadRefusals("online_store")
        self._stamp: tuple[int, int, int] | None = None  # of the file loaded or refused last

    def refresh(self) -> bool:
        """Load the store file if it changed since the last look; True if swapped."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            snapshot = load_snapshot(self.path)
            check_snapshot(snapshot, self.max_age_days, datetime.now(UTC).date())
        except Exception as exc:
            self.refusals.refuse(str(self.path), exc)
            return False
        self.current = OnlineFeatures(snapshot, self.cache_size)
        self.refusals.clear()
        return True
