"""ROC and precision-recall curves as PNG, for the registry and the Dagster UI."""

import numpy as np


def _curve_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    y = labels[order].astype(float)
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    return tp / max(y.sum(), 1), fp / max((1 - y).sum(), 1), tp / np.arange(1, len(y) + 1)


def write_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], roc_path, pr_path) -> None:
    """``curves`` maps a model name to (scores, labels) on the test window."""
    # Imported here: every process that loads the definitions (a run, `dg launch`, the UI's code server) imports
    # this module, and matplotlib costs ~1 s of that. Figures without pyplot render with Agg and keep no global state.
    from matplotlib.figure import Figure

    fig_roc, fig_pr = Figure(figsize=(5, 4.5)), Figure(figsize=(5, 4.5))
    ax_roc, ax_pr = fig_roc.subplots(), fig_pr.subplots()
    for name, (scores, labels) in curves.items():
        recall, fpr, precision = _curve_points(np.asarray(scores), np.asarray(labels))
        ax_roc.plot(np.r_[0, fpr], np.r_[0, recall], label=name)
        ax_pr.plot(recall, precision, label=name)
    ax_roc.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax_roc.set(xlabel="false positive rate", ylabel="recall", title="ROC, test window")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall, test window", ylim=(0, 1.02))
    for fig, ax, path in ((fig_roc, ax_roc, roc_path), (fig_pr, ax_pr, pr_path)):
        ax.legend(loc="best")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
