"""Train and evaluate the phone-price model; write a run directory.

A run directory holds everything needed to evaluate or export a model again:

- ``model.keras``: the trained :class:`~kerasnn.models.PhonePriceModel` (logits out);
- ``standardizer.json``: the per-feature mean and scale fitted on the training part
  (identity when trained on raw features);
- ``history.csv``: loss and accuracy per epoch on the training and test parts;
- ``metrics.json``: test accuracy, per-class precision/recall/F1, confusion matrix,
  backend, seed, data source and sha256, the epoch/batch/iteration figures;
- ``report.png``: loss and accuracy curves and the confusion matrix.

It is written to a temporary sibling directory and renamed into place at the end,
so it appears whole or not at all.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kerasnn.atomic import default_mode, write_text_atomic
from kerasnn.data import PhonePriceData, Standardizer, stratified_split
from kerasnn.errors import ModelFileError, OutputError
from kerasnn.schema import CLASS_NAMES

__all__ = [
    "OPTIMIZERS",
    "TrainConfig",
    "classification_metrics",
    "evaluate_model",
    "iterations",
    "load_run",
    "make_optimizer",
    "train",
    "write_json_atomic",
]

# Optimizer names accepted by --optimizer, mapped to kerasnn.optimizers classes.
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "adagrad", "rmsprop")


@dataclass
class TrainConfig:
    """Training settings. The defaults are the tutorial's recipe, plus standardization.

    The tutorial's baseline is ``TrainConfig(standardize=False)``: raw features,
    Adam lr=1e-4, batch 8, 50 epochs, an 80/20 stratified split.
    """

    epochs: int = 50
    batch_size: int = 8
    lr: float = 1e-4
    optimizer: str = "adam"
    seed: int = 0
    standardize: bool = True
    test_size: float = 0.2
    hidden_units: tuple[int, ...] = (128, 256)
    dropout: float = 0.0
    batch_norm: bool = False
    weight_decay: float | None = None
    verbose: int | str = "auto"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not (isinstance(self.test_size, float) and 0.0 < self.test_size < 1.0):
            raise ValueError(f"test_size must be a float strictly between 0 and 1, got {self.test_size!r}")
        self.hidden_units = tuple(int(u) for u in self.hidden_units)


def iterations(n_samples: int, batch_size: int, epochs: int) -> tuple[int, int]:
    """The tutorial's relation: ``(iterations per epoch, total iterations)``.

    A partial last batch is one more iteration: ceil(N / batch) per epoch.
    """
    per_epoch = math.ceil(n_samples / batch_size)
    return per_epoch, per_epoch * epochs


def make_optimizer(name: str, lr, weight_decay: float | None = None):
    """A kerasnn (torch-faithful) optimizer by name, with torch's defaults."""
    from kerasnn import optimizers

    classes = {
        "adam": optimizers.Adam,
        "adamw": optimizers.AdamW,
        "sgd": optimizers.SGD,
        "momentum": optimizers.Momentum,
        "adagrad": optimizers.Adagrad,
        "rmsprop": optimizers.RMSprop,
    }
    if name not in classes:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {name!r}")
    kwargs = {} if weight_decay is None else {"weight_decay": weight_decay}
    if name == "momentum" and kwargs:
        raise ValueError("optimizer 'momentum' takes no weight_decay")
    return classes[name](learning_rate=lr, **kwargs)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, per-class precision/recall/F1/support and the confusion matrix (scikit-learn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(CLASS_NAMES)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(CLASS_NAMES, precision, recall, f1, support)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "class_names": list(CLASS_NAMES),
    }


def evaluate_model(model, standardizer: Standardizer, x: np.ndarray, y: np.ndarray) -> dict:
    """:func:`classification_metrics` of ``model`` on raw features ``x``."""
    logits = model.predict(standardizer.transform(x), batch_size=1024, verbose=0)
    return classification_metrics(y, np.argmax(np.asarray(logits), axis=1))


def write_json_atomic(path: Path, data) -> None:
    """Write JSON to ``path`` through a temporary file in the same directory."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _prepare_out_dir(out: Path) -> Path:
    """Check ``out`` can be created; return a fresh temporary sibling to write into."""
    out = Path(out)
    if out.exists():
        raise OutputError(f"{out}: already exists; choose another --out or remove it")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=parent))
    except OSError as exc:
        raise OutputError(f"{parent}: cannot create the run directory here ({exc.strerror})") from None


def train(data: PhonePriceData, config: TrainConfig, out: str | os.PathLike, *, log=print) -> dict:
    """Split, standardize, fit, evaluate and write the run directory ``out``.

    Returns the metrics dictionary that is also saved as ``metrics.json``.
    ``log`` receives the human-readable progress lines (Keras prints its own bar).
    """
    import keras

    from kerasnn.losses import CrossEntropyLoss
    from kerasnn.models import build_model

    out = Path(out)
    tmp = _prepare_out_dir(out)
    try:
        keras.utils.set_random_seed(config.seed)
        x_train, x_test, y_train, y_test = stratified_split(data.x, data.y, config.test_size, config.seed)
        standardizer = Standardizer.fit(x_train) if config.standardize else Standardizer.identity()
        per_epoch, total = iterations(len(x_train), config.batch_size, config.epochs)
        log(f"data: {data.source} ({len(data)} rows; {len(x_train)} train / {len(x_test)} test)"
            + ("  [SYNTHETIC: no accuracy from it says anything about real phones]" if data.synthetic else ""))
        log(f"iterations: ceil({len(x_train)} / {config.batch_size}) = {per_epoch} per epoch; "
            f"x {config.epochs} epochs = {total} total")

        model = build_model(config.hidden_units, config.dropout, config.batch_norm, seed=config.seed)
        model.compile(
            optimizer=make_optimizer(config.optimizer, config.lr, config.weight_decay),
            loss=CrossEntropyLoss(),
            metrics=["accuracy"],
        )
        started = time.perf_counter()
        history = model.fit(
            standardizer.transform(x_train), y_train,
            validation_data=(standardizer.transform(x_test), y_test),
            epochs=config.epochs, batch_size=config.batch_size, shuffle=True, verbose=config.verbose,
        )
        seconds = time.perf_counter() - started

        metrics = evaluate_model(model, standardizer, x_test, y_test)
        metrics.update(
            backend=keras.backend.backend(),
            keras_version=keras.__version__,
            seed=config.seed,
            data_source=data.source,
            data_sha256=data.sha256,
            synthetic=data.synthetic,
            n_train=len(x_train),
            n_test=len(x_test),
            iterations_per_epoch=per_epoch,
            total_iterations=total,
            train_seconds=round(seconds, 3),
            config={k: v for k, v in asdict(config).items() if k not in ("verbose", "extra")},
        )
        _write_run(tmp, model, standardizer, history.history, metrics)
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp made it 0700
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"test accuracy: {metrics['accuracy']:.4f}" + ("  [SYNTHETIC DATA]" if data.synthetic else ""))
    log(f"run written to {out}")
    return metrics


def _write_run(run_dir: Path, model, standardizer: Standardizer, history: dict, metrics: dict) -> None:
    import pandas as pd

    from kerasnn.plots import plot_run

    model.save(run_dir / "model.keras")
    write_json_atomic(run_dir / "standardizer.json", standardizer.to_dict())
    frame = pd.DataFrame(history)
    frame = frame.rename(columns=lambda c: c.replace("val_", "test_"))
    frame.insert(0, "epoch", range(1, len(frame) + 1))
    frame.to_csv(run_dir / "history.csv", index=False)
    write_json_atomic(run_dir / "metrics.json", metrics)
    plot_run(frame, metrics, run_dir / "report.png")


def load_run(run_dir: str | os.PathLike):
    """``(model, standardizer, metrics)`` from a run directory written by :func:`train`."""
    import keras

    # Register every class a saved, compiled model names (model, layers, loss, optimizer).
    import kerasnn.losses
    import kerasnn.models
    import kerasnn.optimizers  # noqa: F401

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: not a run directory (expected the --out of `kerasnn train`)")
    for name in ("model.keras", "standardizer.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise ModelFileError(f"{run_dir / name}: missing from the run directory")
    try:
        standardizer = Standardizer.from_dict(
            json.loads((run_dir / "standardizer.json").read_text()), str(run_dir / "standardizer.json"))
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{run_dir}: invalid JSON ({exc})") from None
    try:
        model = keras.saving.load_model(run_dir / "model.keras", safe_mode=True)
    except Exception as exc:  # noqa: BLE001 (Keras raises many types for a corrupt archive)
        raise ModelFileError(f"{run_dir / 'model.keras'}: cannot load the model ({exc})") from None
    return model, standardizer, metrics
