"""Figures for a training run (matplotlib, non-interactive backend)."""

from __future__ import annotations

import os

import numpy as np

from kerasnn.atomic import atomic_path

__all__ = ["plot_run", "save_figure_atomic"]


def save_figure_atomic(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save a matplotlib figure as PNG through a temporary file, then close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)


def plot_run(history, metrics: dict, path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch (train and test) and the test confusion matrix.

    ``history`` is a DataFrame with columns epoch, loss, accuracy, test_loss,
    test_accuracy; ``metrics`` a dictionary from
    :func:`kerasnn.training.classification_metrics` plus ``backend`` and ``synthetic``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc, ax_cm) = plt.subplots(1, 3, figsize=(15, 4.4))
    for ax, key, title in ((ax_loss, "loss", "cross-entropy loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(history["epoch"], history[key], label="train")
        if f"test_{key}" in history:
            ax.plot(history["epoch"], history[f"test_{key}"], label="test")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()

    cm = np.asarray(metrics["confusion_matrix"])
    names = metrics["class_names"]
    ax_cm.imshow(cm, cmap="Blues")
    ax_cm.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax_cm.set_yticks(range(len(names)), names)
    ax_cm.set_xlabel("predicted")
    ax_cm.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax_cm.text(j, i, str(cm[i, j]), ha="center", va="center",
                       color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax_cm.set_title(f"test confusion matrix (accuracy {metrics['accuracy']:.3f})")

    title = f"phone price MLP, {metrics.get('backend', '?')} backend"
    if metrics.get("synthetic"):
        title += " - SYNTHETIC DATA, not a real accuracy"
    fig.suptitle(title)
    fig.tight_layout()
    save_figure_atomic(fig, path)
