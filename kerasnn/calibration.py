"""Calibration of predicted class probabilities: expected calibration error and a
reliability diagram (top-label confidence, equal-width bins).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["expected_calibration_error", "plot_reliability", "reliability_bins"]


def _check(proba, y_true):
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    if proba.ndim != 2 or len(proba) != len(y_true) or len(y_true) == 0:
        raise ValueError(f"proba must be [N, C] with N = len(y_true) > 0, got {proba.shape} and {y_true.shape}")
    if not np.all(np.isfinite(proba)):
        raise ValueError("proba must be finite (every row needs an out-of-fold prediction)")
    return proba, y_true


def reliability_bins(proba, y_true, n_bins: int = 10) -> list[dict]:
    """Per bin of top-label confidence ``(lo, hi]``: count, mean confidence, accuracy.

    The first bin also holds confidence exactly ``lo`` (0). Empty bins have count 0
    and NaN confidence/accuracy.
    """
    proba, y_true = _check(proba, y_true)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        mask = index == b
        count = int(mask.sum())
        bins.append({
            "lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count,
            "confidence": float(confidence[mask].mean()) if count else float("nan"),
            "accuracy": float(correct[mask].mean()) if count else float("nan"),
        })
    return bins


def expected_calibration_error(proba, y_true, n_bins: int = 10) -> float:
    """ECE: sum over bins of (bin count / N) * |accuracy - mean confidence|."""
    bins = reliability_bins(proba, y_true, n_bins)
    n = sum(b["count"] for b in bins)
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]))


def plot_reliability(proba, y_true, path: str | os.PathLike, n_bins: int = 10, title: str = "") -> float:
    """Write a reliability diagram PNG (atomically); return the ECE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasnn.plots import save_figure_atomic

    bins = reliability_bins(proba, y_true, n_bins)
    ece = expected_calibration_error(proba, y_true, n_bins)
    fig, (ax, ax_hist) = plt.subplots(2, 1, figsize=(5.5, 6.5), gridspec_kw={"height_ratios": [3, 1]},
                                      sharex=True)
    width = 1.0 / n_bins
    centers = [b["lo"] + width / 2 for b in bins]
    acc = [b["accuracy"] if b["count"] else 0.0 for b in bins]
    ax.bar(centers, acc, width=width * 0.9, color="tab:blue", label="accuracy in bin")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    conf = [(c, b["confidence"]) for c, b in zip(centers, bins) if b["count"]]
    ax.plot([c for c, _ in conf], [v for _, v in conf], "o", color="tab:orange", label="mean confidence")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(title or f"reliability (ECE {ece:.4f}, {n_bins} bins)")
    ax_hist.bar(centers, [b["count"] for b in bins], width=width * 0.9, color="tab:gray")
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("top-label confidence")
    ax_hist.set_ylabel("rows")
    ax_hist.set_xlim(0, 1)
    fig.tight_layout()
    save_figure_atomic(fig, path)
    return ece
