"""Time windows of a training run: train, delay, test, and the prequential validation folds.

Fraud labels arrive late, so every split leaves ``delay_days`` between the days a model learns
from and the days it is judged on: a model in production never knows last week's frauds.
"""

from dataclasses import dataclass
from datetime import date, timedelta


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class TrainingWindow:
    train_start: date
    train_end: date
    delay_days: int
    test_start: date
    test_end: date

    def __post_init__(self) -> None:
        if not self.train_start <= self.train_end < self.test_start <= self.test_end:
            raise ValueError(f"train and test windows overlap or are empty: {self}")
        gap = (self.test_start - self.train_end).days - 1
        if gap < self.delay_days:
            raise ValueError(f"only {gap} day(s) between training and test, {self.delay_days} required")

    @classmethod
    def ending_on(cls, last_day: date, train_days: int, delay_days: int, test_days: int) -> "TrainingWindow":
        test_start = last_day - timedelta(days=test_days - 1)
        train_end = test_start - timedelta(days=delay_days + 1)
        return cls(train_end - timedelta(days=train_days - 1), train_end, delay_days, test_start, last_day)

    @classmethod
    def resolve(
        cls,
        *,
        latest_day: date | None,
        train_start: date | None,
        train_end: date | None,
        train_days: int,
        delay_days: int,
        test_days: int,
    ) -> "TrainingWindow":
        """An explicit ``train_end`` (and ``train_start``), or the window whose test ends on ``latest_day``."""
        if train_end is None:
            if latest_day is None:
                raise ValueError("no gold partition to train on: materialize gold_transaction_features first")
            return cls.ending_on(latest_day, train_days, delay_days, test_days)
        start = train_start or train_end - timedelta(days=train_days - 1)
        test_start = train_end + timedelta(days=delay_days + 1)
        return cls(start, train_end, delay_days, test_start, test_start + timedelta(days=test_days - 1))

    @property
    def train_days(self) -> list[date]:
        return days_between(self.train_start, self.train_end)

    @property
    def test_days(self) -> list[date]:
        return days_between(self.test_start, self.test_end)

    @property
    def all_days(self) -> list[date]:
        """Training, delay and test days: the labels the evaluation protocol may know of."""
        return days_between(self.train_start, self.test_end)


@dataclass(frozen=True)
class ValidationFold:
    """Fit on ``fit_days``, judge on ``valid_days``, with the label delay in between."""

    fit_days: tuple[date, ...]
    valid_days: tuple[date, ...]


def prequential_folds(
    window: TrainingWindow, fold_days: int, max_folds: int, earliest_day: date | None = None
) -> list[ValidationFold]:
    """Consecutive validation blocks of ``fold_days`` walking back from the end of the training
    window, the latest first. Each is fitted as the final model will be: on as many days as the
    training window has, ending ``delay_days`` before the block. Fit days may reach before the
    training window (everything there is older than the test, so known at training time) but not
    before ``earliest_day``, the first day with data.

    Folds with no day left to fit on are dropped; a window too short for even one fold is refused.
    """
    first = earliest_day or date.min
    folds = []
    for k in range(max_folds):
        valid_end = window.train_end - timedelta(days=k * fold_days)
        valid_start = valid_end - timedelta(days=fold_days - 1)
        fit_end = valid_start - timedelta(days=window.delay_days + 1)
        fit_start = max(fit_end - timedelta(days=len(window.train_days) - 1), first)
        if fit_end < fit_start or valid_start < window.train_start:
            break
        folds.append(
            ValidationFold(tuple(days_between(fit_start, fit_end)), tuple(days_between(valid_start, valid_end)))
        )
    if not folds:
        raise ValueError(
            f"the training window {window.train_start}..{window.train_end} is too short for one validation fold of "
            f"{fold_days} day(s) after a {window.delay_days}-day delay"
        )
    return folds
