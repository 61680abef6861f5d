"""What the app holds while it runs: model, online store, stream, writers; and their refresh."""

import gc
import logging
import threading

from trybank_assets.lake_layout import LakeLayout
from trybank_assets.settings import TrybankSettings
from trybank_serving.bronze_appender import BronzeAppender
from trybank_serving.model_holder import ModelHolder
from trybank_serving.online_features import IntradayStream, OnlineFeatures
from trybank_serving.prediction_log import PredictionLog
from trybank_serving.store_holder import OnlineStoreHolder

log = logging.getLogger("trybank_serving")


class ServingState:
    def __init__(self, settings: TrybankSettings) -> None:
        self.settings = settings
        self.api_key = settings.api_key.get_secret_value().encode() if settings.api_key else None
        self.lake = LakeLayout(str(settings.lake_root))
        self.models = ModelHolder(self.lake.fraud_model_registry)
        self.stores = OnlineStoreHolder(
            self.lake.online_store, settings.store_max_age_days, settings.online_feature_cache_size
        )
        self.stream = IntradayStream()
        self.bronze = BronzeAppender(self.lake)
        self.predictions = PredictionLog(
            self.lake.predictions,
            settings.prediction_flush_rows,
            settings.prediction_flush_seconds,
            settings.prediction_segment_seconds,
            settings.prediction_max_open_files,
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

    @property
    def online(self) -> OnlineFeatures | None:
        return self.stores.current

    def refresh(self) -> None:
        """Pick up a newly promoted model and a rebuilt online store; what fails its checks is
        refused and the old one keeps serving."""
        loaded = False
        if self.models.refresh():
            loaded = True
            log.info("serving model %s", self.models.current.version)
        if self.stores.refresh():
            loaded = True
            snapshot = self.stores.current.snapshot
            self.stream.drop_through(snapshot.as_of.toordinal())
            log.info("online store as of %s: %d customers", snapshot.as_of, len(snapshot.customers))
        if loaded:
            # The store is millions of long-lived objects: freezing them keeps the cyclic GC from
            # rescanning them on every full collection (pauses of tens of ms at the p99 otherwise).
            # Frozen objects are never collected, so first thaw and collect what the swap left:
            # the old model's cyclic garbage stayed pinned by each freeze (+133 MB over 200 reloads).
            gc.unfreeze()
            gc.collect()
            gc.freeze()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.model_poll_seconds):
            self.refresh()
