"""What the app holds while it runs: model, online store, stream, writers; and their refresh."""

import gc
import logging
import threading
from pathlib import Path

from trybank_assets.lake_layout import LakeLayout
from trybank_assets.online_store import load_snapshot
from trybank_assets.settings import TrybankSettings
from trybank_serving.bronze_appender import BronzeAppender
from trybank_serving.model_holder import ModelHolder
from trybank_serving.online_features import IntradayStream, OnlineFeatures
from trybank_serving.prediction_log import PredictionLog

log = logging.getLogger("trybank_serving")


class ServingState:
    def __init__(self, settings: TrybankSettings) -> None:
        self.settings = settings
        self.api_key = settings.api_key.get_secret_value().encode() if settings.api_key else None
        self.lake = LakeLayout(str(settings.lake_root))
        self.models = ModelHolder(self.lake.fraud_model_registry)
        self.online: OnlineFeatures | None = None
        self._store_stamp: tuple[int, int] | None = None
        self.stream = IntradayStream()
        self.bronze = BronzeAppender(self.lake)
        self.predictions = PredictionLog(
            self.lake.predictions,
            settings.prediction_flush_rows,
            settings.prediction_flush_seconds,
            settings.prediction_segment_seconds,
        )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="model-and-store-watcher", daemon=True)

    def start(self) -> None:
        self.refresh()
        self.bronze.start()
        self.predictions.start()
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        self.predictions.close()
        self.bronze.close()

    def refresh(self) -> None:
        """Pick up a newly promoted model and a rebuilt online store; keep serving the old on error."""
        loaded = False
        try:
            if self.models.refresh():
                loaded = True
                log.info("serving model %s", self.models.current.version)
        except Exception:
            log.exception("could not load the promoted model; still serving the previous one")
        try:
            loaded |= self._refresh_store(self.lake.online_store)
        except Exception:
            log.exception("could not load the online store; still serving the previous one")
        if loaded:
            # The store is millions of long-lived objects: keep the cyclic GC from rescanning them on
            # every full collection (pauses of tens of ms at the p99 otherwise).
            gc.freeze()

    def _refresh_store(self, path: Path) -> bool:
        if not path.is_file():
            return False
        stat = path.stat()
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp == self._store_stamp:
            return False
        snapshot = load_snapshot(path)
        self.online = OnlineFeatures(snapshot)
        self._store_stamp = stamp
        self.stream.drop_through(snapshot.as_of.toordinal())
        log.info("online store as of %s: %d customers", snapshot.as_of, len(snapshot.customers))
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.model_poll_seconds):
            self.refresh()
