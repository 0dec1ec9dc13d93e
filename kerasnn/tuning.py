"""The tutorial's tuning ladder, scored by stratified cross-validation.

Contract
--------
Every configuration (a :class:`TrialConfig`) is scored by :func:`cross_validate` on the
same folds (:func:`cv_folds`: ``StratifiedKFold(n_folds, shuffle=True,
random_state=seed)``). Inside each fold:

- when the configuration early-stops, a stratified validation part
  (``val_fraction`` of the fold's *training* part) is carved out first; the fold's
  test part is never seen before the final score;
- the :class:`~kerasnn.data.Standardizer` is fitted on the rows the network is
  trained on (the fold's training part minus the validation part), never on the
  validation or test rows (identity when ``standardize`` is off);
- the model is :func:`kerasnn.models.build_model`, the loss
  :class:`kerasnn.losses.CrossEntropyLoss`, the optimizer
  :func:`kerasnn.training.make_optimizer` (kerasnn's torch-faithful optimizers), the
  schedules :mod:`kerasnn.schedules`, dropout and batch norm :mod:`kerasnn.layers`.

The result is the mean and (population) standard deviation of the per-fold test
accuracy, plus the out-of-fold class probabilities (one per row) that the model card
uses for the pooled confusion matrix and the calibration.

:func:`run_ladder` runs rungs 0..9 (see :data:`RUNG_TITLES`), each adding one
technique to the configuration carried forward; a rung's change is carried forward
only if it raises the mean accuracy, but every rung's number is reported. The
scikit-learn baseline (StandardScaler + LogisticRegression, C=100 and C=1) is scored
on the same folds. :func:`write_results` writes ``ladder.md``, ``ladder.csv``,
``ladder.png`` and ``ladder.json`` atomically.

Keras is imported inside the functions (the CLI imports this module at start-up).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kerasnn.atomic import write_text_atomic
from kerasnn.data import PhonePriceData, Standardizer, stratified_split
from kerasnn.errors import KerasnnError, OutputError

__all__ = [
    "CSV_COLUMNS",
    "FINAL_CONFIG",
    "TUTORIAL_BASELINE",
    "CVResult",
    "LadderSettings",
    "RungResult",
    "TrialConfig",
    "TuningError",
    "cross_validate",
    "cv_folds",
    "fit_model",
    "fold_parts",
    "load_results",
    "logistic_baseline",
    "rescore_final",
    "run_ladder",
    "search",
    "train_final",
    "write_results",
]

CSV_COLUMNS = ("rung", "technique", "accuracy_mean", "accuracy_std", "seconds")
SCHEDULES = (None, "step", "multistep", "exponential")
SEARCH_WIDTHS = (8, 16, 32, 64, 128, 256)  # narrow widths matter: the signal is near-linear
HEADS = ("softmax", "ordinal")  # kerasnn.models.HEADS, repeated so that importing this module needs no keras


class TuningError(KerasnnError, ValueError):
    """A tuning option or configuration is invalid."""


@dataclass(frozen=True)
class TrialConfig:
    """One network + training recipe. The defaults are the tutorial's baseline.

    ``schedule`` is None or one of ``"step"`` (StepLR(step_size, gamma)),
    ``"multistep"`` (MultiStepLR(milestones, gamma)), ``"exponential"``
    (ExponentialLR(gamma)); epochs are torch epochs (one scheduler step per epoch).
    ``patience`` (epochs without a lower validation loss) turns on early stopping
    on a validation part of ``val_fraction`` of the training rows, restoring the
    weights of the best epoch; ``epochs`` is then the maximum.
    """

    standardize: bool = False
    hidden_units: tuple[int, ...] = (128, 256)
    dropout: float = 0.0
    batch_norm: bool = False
    head: str = "softmax"
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float | None = None
    batch_size: int = 8
    epochs: int = 50
    schedule: str | None = None
    step_size: int = 10
    milestones: tuple[int, ...] = (25, 40)
    gamma: float = 0.5
    patience: int | None = None
    val_fraction: float = 0.15

    def __post_init__(self):
        object.__setattr__(self, "hidden_units", tuple(int(u) for u in self.hidden_units))
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        for name in ("batch_size", "epochs", "step_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TuningError(f"{name} must be a positive integer, got {value!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise TuningError(f"lr must be a positive finite number, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise TuningError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise TuningError(f"patience must be None or a positive integer, got {self.patience!r}")
        if not 0.0 < self.val_fraction < 1.0:
            raise TuningError(f"val_fraction must be strictly between 0 and 1, got {self.val_fraction!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise TuningError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.head not in HEADS:
            raise TuningError(f"head must be one of {HEADS}, got {self.head!r}")

    def schedule_text(self) -> str:
        """The schedule as torch would be called, or "constant"."""
        if self.schedule == "step":
            return f"StepLR(step_size={self.step_size}, gamma={self.gamma:g})"
        if self.schedule == "multistep":
            return f"MultiStepLR(milestones={list(self.milestones)}, gamma={self.gamma:g})"
        if self.schedule == "exponential":
            return f"ExponentialLR(gamma={self.gamma:g})"
        return "constant"

    def describe(self) -> str:
        """A one-line human description (used in tables and logs)."""
        parts = ["std" if self.standardize else "raw",
                 "-".join(str(u) for u in self.hidden_units) or "no hidden layer"]
        if self.batch_norm:
            parts.append("BN")
        if self.dropout:
            parts.append(f"drop {self.dropout:g}")
        if self.head != "softmax":
            parts.append(f"{self.head} head")
        wd = "" if self.weight_decay is None else f" wd {self.weight_decay:g}"
        parts.append(f"{'AdamW' if self.optimizer == 'adamw' else self.optimizer.capitalize()} "
                     f"lr {self.lr:g}{wd}")
        if self.schedule == "step":
            parts.append(f"StepLR({self.step_size}, {self.gamma:g})")
        elif self.schedule == "multistep":
            parts.append(f"MultiStepLR({list(self.milestones)}, {self.gamma:g})")
        elif self.schedule == "exponential":
            parts.append(f"ExponentialLR({self.gamma:g})")
        parts.append(f"batch {self.batch_size}")
        parts.append(f"{self.epochs} ep" + (f" (early stop, patience {self.patience})" if self.patience else ""))
        return ", ".join(parts)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["hidden_units"] = list(self.hidden_units)
        data["milestones"] = list(self.milestones)
        return data


# The tutorial's first network: raw features, Adam lr=1e-4, batch 8, 50 epochs.
TUTORIAL_BASELINE = TrialConfig()

# The shipped configuration: an ordinal (cumulative-logit) head on the standardized features,
# no hidden layer, trained with kerasnn's Linear, CrossEntropyLoss, AdamW and StepLR.
# How it was found (all on the ladder's 5 folds, jax): the softmax networks of rungs 0-8
# topped out at 0.966 (one hidden layer of 16, dropout 0.3, AdamW 5e-4), below multinomial
# logistic regression (0.971). The target is ordered, and an ordinal head scores each row
# once: on the carried 16-unit network it scored 0.91-0.95, with no hidden layer 0.968 at
# lr 5e-4 (not converged after 400 epochs), 0.975 at 5e-3 with early stopping, 0.974-0.976
# with all training rows and a fixed run (lr 5e-3 constant, 1e-2 ExponentialLR(0.99),
# 1e-2 MultiStepLR at batch 16, and this one). This one converges in the fewest steps.
# The problem is convex, so every backend lands on nearly the same weights.
FINAL_CONFIG = TrialConfig(
    standardize=True, hidden_units=(), dropout=0.0, batch_norm=False, head="ordinal", optimizer="adamw",
    lr=0.02, weight_decay=2.4e-3, batch_size=32, epochs=600, schedule="step", step_size=200, gamma=0.3,
    patience=None,
)


@dataclass(frozen=True)
class LadderSettings:
    """How much work the ladder does. :meth:`quick` is the CI-sized variant."""

    folds: int = 5
    seed: int = 0
    epochs_scale: float = 1.0          # multiplies every rung's epoch count (quick: tiny)
    max_epochs: int = 400              # rung 7's epoch ceiling
    patience: int = 40                 # rung 7's early-stopping patience
    budget: float = 600.0              # rung 8's search time budget, seconds
    trials: int = 60                   # rung 8's maximum number of trials
    quick: bool = False

    @classmethod
    def quick_settings(cls, seed: int = 0, budget: float = 20.0) -> LadderSettings:
        return cls(folds=2, seed=seed, epochs_scale=0.04, max_epochs=3, patience=1,
                   budget=budget, trials=3, quick=True)

    def epochs(self, n: int) -> int:
        return max(1, round(n * self.epochs_scale))


@dataclass
class CVResult:
    """Per-fold accuracies, out-of-fold probabilities and timing of one configuration."""

    config: TrialConfig
    fold_accuracy: list[float]
    oof_proba: np.ndarray
    seconds: float
    epochs_run: list[int] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_accuracy))

    @property
    def std(self) -> float:
        return float(np.std(self.fold_accuracy))


@dataclass
class RungResult:
    """One row of the ladder table."""

    rung: str
    technique: str
    mean: float
    std: float
    seconds: float
    config: dict | None = None
    kept: bool | None = None
    fold_accuracy: list[float] = field(default_factory=list)
    note: str = ""


# ----------------------------------------------------------------------------- folds


def cv_folds(y: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` pairs of ``StratifiedKFold(n_folds, shuffle=True, random_state=seed)``."""
    from sklearn.model_selection import StratifiedKFold

    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise TuningError(f"folds must be an integer >= 2, got {n_folds!r}")
    counts = np.bincount(np.asarray(y))
    if counts.min() < n_folds:
        raise TuningError(f"folds={n_folds}: the smallest class has only {counts.min()} rows")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(np.zeros(len(y)), y)]


@dataclass
class FoldParts:
    """The arrays of one fold: standardized fit/validation/test features and labels."""

    standardizer: Standardizer
    x_fit: np.ndarray
    y_fit: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    fit_rows: np.ndarray  # indices (into the full data) of the rows the network trains on


def fold_parts(x: np.ndarray, y: np.ndarray, train_idx: np.ndarray, test_idx: np.ndarray,
               config: TrialConfig, seed: int = 0) -> FoldParts:
    """Split one fold: carve the validation part from ``train_idx`` (when early stopping),
    fit the standardizer on the remaining training rows only, and transform all parts.
    """
    train_idx = np.asarray(train_idx)
    fit_rows, val_rows = train_idx, None
    if config.patience is not None:
        fit_rows, val_rows, _, _ = stratified_split(train_idx, y[train_idx], config.val_fraction, seed)
        fit_rows, val_rows = np.sort(fit_rows), np.sort(val_rows)
    if config.batch_norm and len(fit_rows) % config.batch_size == 1:
        # A last batch of one row has no batch variance (torch's BatchNorm1d raises too).
        fit_rows = fit_rows[:-1]
    standardizer = Standardizer.fit(x[fit_rows]) if config.standardize else Standardizer.identity(x.shape[1])
    return FoldParts(
        standardizer=standardizer,
        x_fit=standardizer.transform(x[fit_rows]), y_fit=y[fit_rows],
        x_val=None if val_rows is None else standardizer.transform(x[val_rows]),
        y_val=None if val_rows is None else y[val_rows],
        x_test=standardizer.transform(x[test_idx]), y_test=y[test_idx],
        fit_rows=fit_rows,
    )


# ----------------------------------------------------------------------------- training


def _learning_rate(config: TrialConfig, n_fit: int):
    from kerasnn import schedules

    if config.schedule is None:
        return config.lr
    per_epoch = schedules.steps_per_epoch(n_fit, config.batch_size)
    if config.schedule == "step":
        return schedules.StepLR(config.lr, step_size=config.step_size, gamma=config.gamma,
                                steps_per_epoch=per_epoch)
    if config.schedule == "multistep":
        return schedules.MultiStepLR(config.lr, milestones=list(config.milestones), gamma=config.gamma,
                                     steps_per_epoch=per_epoch)
    return schedules.ExponentialLR(config.lr, gamma=config.gamma, steps_per_epoch=per_epoch)


def optimizer_source() -> str:
    """``"kerasnn"`` when kerasnn.optimizers is importable, else ``"keras-builtin"`` (the seam)."""
    try:
        import kerasnn.optimizers  # noqa: F401
    except ImportError:
        return "keras-builtin"
    return "kerasnn"


def _optimizer(config: TrialConfig, n_fit: int):
    """kerasnn's optimizer (via make_optimizer); Keras' built-in twin only while
    kerasnn.optimizers does not exist yet (results record which was used)."""
    lr = _learning_rate(config, n_fit)
    if optimizer_source() == "kerasnn":
        from kerasnn.training import make_optimizer

        return make_optimizer(config.optimizer, lr, config.weight_decay)
    import keras

    if config.optimizer == "adamw":
        wd = 1e-2 if config.weight_decay is None else config.weight_decay
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd, epsilon=1e-8)
    if config.optimizer == "adam" and not config.weight_decay:
        return keras.optimizers.Adam(learning_rate=lr, epsilon=1e-8)
    raise TuningError(f"optimizer {config.optimizer!r} needs kerasnn.optimizers")


def _compile_options() -> dict:
    """Speed options that do not change the numbers: several steps per call on tf/jax."""
    import keras

    backend = keras.backend.backend()
    if backend in ("tensorflow", "jax"):
        return {"steps_per_execution": 50}
    return {}


def fit_model(config: TrialConfig, x_fit: np.ndarray, y_fit: np.ndarray, x_val=None, y_val=None,
              seed: int = 0, verbose: int = 0):
    """Build and train one network on standardized arrays; return ``(model, info)``.

    With ``config.patience`` and validation arrays, stops when the validation loss
    has not improved for ``patience`` epochs and restores the best epoch's weights
    (``info["best_epoch"]``, 1-based). Seeds Keras' generators with ``seed`` first,
    so the same seed gives the same model on a backend.
    """
    import keras

    from kerasnn.losses import CrossEntropyLoss
    from kerasnn.models import build_model

    if (config.patience is None) != (x_val is None):
        raise TuningError("fit_model: give validation arrays exactly when config.patience is set")
    model = build_model(config.hidden_units, config.dropout, config.batch_norm, seed=seed, head=config.head)
    model.compile(optimizer=_optimizer(config, len(x_fit)), loss=CrossEntropyLoss(),
                  metrics=["accuracy"], **_compile_options())
    callbacks = []
    stopper = None
    if config.patience is not None:
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                                restore_best_weights=True)
        callbacks.append(stopper)
    history = model.fit(
        x_fit, y_fit, epochs=config.epochs, batch_size=config.batch_size, shuffle=True,
        validation_data=None if x_val is None else (x_val, y_val), callbacks=callbacks, verbose=verbose,
    )
    epochs_run = len(history.history["loss"])
    best_epoch = epochs_run
    if stopper is not None and stopper.best_weights is not None:
        best_epoch = int(stopper.best_epoch) + 1
    return model, {"epochs_run": epochs_run, "best_epoch": best_epoch, "history": history.history}


def predict_proba(model, x: np.ndarray) -> np.ndarray:
    """Softmax of the model's logits, float64 [N, C]."""
    logits = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def cross_validate(x: np.ndarray, y: np.ndarray, config: TrialConfig, folds, seed: int = 0,
                   on_fold=None) -> CVResult:
    """Score ``config`` on ``folds`` (see the module docstring for the per-fold protocol).

    ``on_fold(i, accuracy_so_far)`` is called after each fold (the search uses it to
    prune); it may raise to abort.
    """
    started = time.perf_counter()
    oof = np.full((len(y), int(np.max(y)) + 1), np.nan)
    accuracies, epochs_run, best_epochs = [], [], []
    for i, (train_idx, test_idx) in enumerate(folds):
        parts = fold_parts(x, y, train_idx, test_idx, config, seed=seed + i)
        model, info = fit_model(config, parts.x_fit, parts.y_fit, parts.x_val, parts.y_val, seed=seed + i)
        proba = predict_proba(model, parts.x_test)
        oof[test_idx] = proba
        accuracies.append(float(np.mean(np.argmax(proba, axis=1) == parts.y_test)))
        epochs_run.append(info["epochs_run"])
        best_epochs.append(info["best_epoch"])
        del model
        if on_fold is not None:
            on_fold(i, float(np.mean(accuracies)))
    return CVResult(config, accuracies, oof, time.perf_counter() - started, epochs_run, best_epochs)


def logistic_baseline(x: np.ndarray, y: np.ndarray, folds, C: float) -> CVResult:
    """StandardScaler + LogisticRegression(C) scored on ``folds`` (scaler fitted per fold)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    oof = np.full((len(y), int(np.max(y)) + 1), np.nan)
    accuracies = []
    for train_idx, test_idx in folds:
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10000))
        clf.fit(x[train_idx], y[train_idx])
        oof[test_idx] = clf.predict_proba(x[test_idx])
        accuracies.append(float(clf.score(x[test_idx], y[test_idx])))
    return CVResult(TrialConfig(standardize=True), accuracies, oof, time.perf_counter() - started)


# ----------------------------------------------------------------------------- search


def search(x: np.ndarray, y: np.ndarray, base: TrialConfig, folds, *, budget: float, trials: int,
           seed: int = 0, epochs: int | None = None, patience: int | None = None, log=print):
    """Optuna TPE search over width, depth, dropout, weight decay, learning rate and batch size.

    Keeps ``base``'s standardization, batch norm, optimizer (AdamW), schedule and early
    stopping. Each trial is cross-validated on ``folds``; after each fold the running
    mean is reported and a MedianPruner stops trials that are clearly worse. Stops
    after ``trials`` trials or ``budget`` seconds (Optuna's ``timeout``; a running
    trial finishes). Returns ``(best_config, study)``.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def make(trial) -> TrialConfig:
        depth = trial.suggest_int("depth", 1, 3)
        widths = tuple(trial.suggest_categorical(f"width{i}", list(SEARCH_WIDTHS)) for i in range(depth))
        return replace(
            base, hidden_units=widths,
            dropout=trial.suggest_float("dropout", 0.0, 0.6),
            weight_decay=trial.suggest_float("weight_decay", 1e-3, 3.0, log=True),
            lr=trial.suggest_float("lr", 1e-4, 1e-2, log=True),
            batch_size=trial.suggest_categorical("batch_size", [8, 16, 32, 64, 128]),
            optimizer="adamw",
            epochs=epochs or base.epochs,
            patience=patience if patience is not None else base.patience,
        )

    def objective(trial):
        config = make(trial)

        def report(i, running_mean):
            trial.report(running_mean, i)
            if trial.should_prune():
                raise optuna.TrialPruned()

        result = cross_validate(x, y, config, folds, seed=seed, on_fold=report)
        log(f"  trial {trial.number}: {result.mean:.4f} +- {result.std:.4f}  {config.describe()}  "
            f"({result.seconds:.0f}s)")
        return result.mean

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )
    # Seed the search with the configuration carried forward, so the search can only
    # add to what the ladder already found.
    study.enqueue_trial(_params_of(base))
    study.optimize(objective, n_trials=trials, timeout=budget, catch=())
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise TuningError("search: no trial completed within the budget; raise --budget")
    return make(optuna.trial.FixedTrial(study.best_params)), study


def _params_of(config: TrialConfig) -> dict:
    allowed = set(SEARCH_WIDTHS)
    depth = min(len(config.hidden_units), 3)
    params = {"depth": depth, "dropout": min(config.dropout, 0.6),
              "weight_decay": min(max(config.weight_decay or 1e-2, 1e-3), 3.0),
              "lr": min(max(config.lr, 1e-4), 1e-2),
              "batch_size": config.batch_size if config.batch_size in (8, 16, 32, 64, 128) else 32}
    for i in range(depth):
        w = config.hidden_units[i]
        params[f"width{i}"] = w if w in allowed else min(allowed, key=lambda a: abs(a - w))
    return params


# ----------------------------------------------------------------------------- ladder

RUNG_TITLES = {
    "0": "tutorial baseline (raw features, Adam lr 1e-4, batch 8, 50 epochs)",
    "1": "+ standardization (scaler fitted on each fold's training part)",
    "2": "depth / width",
    "3": "+ BatchNorm1d",
    "4": "+ Dropout",
    "5": "AdamW, tuned learning rate and weight decay",
    "6": "+ learning-rate schedule",
    "7": "more epochs + early stopping on a validation split (best weights restored)",
    "8": "Optuna search (width, depth, dropout, weight decay, lr, batch size)",
    "9": "ordinal output head (cumulative logits; beyond the tutorial)",
}


def run_ladder(data: PhonePriceData, settings: LadderSettings, log=print, on_progress=None) -> dict:
    """Run rungs 0..9, the logistic baselines and the shipped configuration on the same folds.

    Returns ``{"rows": [RungResult...], "final": RungResult, "baselines": {...},
    "kept_rungs": [...], ...}`` ready for :func:`write_results`. ``on_progress(result)``
    receives the same dict (``"partial": True``, ``"final"`` possibly None) after each
    scored row, so a long run can write what it has.
    """
    import keras

    x, y = data.x, data.y
    folds = cv_folds(y, settings.folds, settings.seed)
    seed = settings.seed
    rows: list[RungResult] = []
    kept_rungs: list[str] = []
    started = time.perf_counter()

    def score(label: str, technique: str, config: TrialConfig) -> RungResult:
        result = cross_validate(x, y, config, folds, seed=seed)
        row = RungResult(label, technique, result.mean, result.std, round(result.seconds, 1),
                         config.to_dict(), fold_accuracy=result.fold_accuracy)
        if label == "final":
            state["final"] = row
        else:
            rows.append(row)
        log(f"rung {label:>3}: {result.mean:.4f} +- {result.std:.4f}  ({result.seconds:.0f}s)  "
            f"{config.describe()}")
        if on_progress is not None:
            on_progress(snapshot(partial=True))
        return row

    def snapshot(partial: bool) -> dict:
        return {
            "rows": list(rows),
            "final": state["final"],
            "baselines": baselines,
            "kept_rungs": list(kept_rungs),
            "carried_config": state["current"][0].to_dict() if state["current"] else None,
            "carried_mean": state["current"][1] if state["current"] else None,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "optimizer_source": optimizer_source(),
            "data_source": data.source,
            "data_sha256": data.sha256,
            "synthetic": data.synthetic,
            "n_rows": len(data),
            "settings": asdict(settings),
            "total_seconds": round(time.perf_counter() - started, 1),
            "search_trials": state["trials"],
            "partial": partial,
        }

    state = {"final": None, "current": None, "trials": None}
    baselines = {}
    for C in (100.0, 1.0):
        r = logistic_baseline(x, y, folds, C)
        baselines[f"logreg_C{C:g}"] = RungResult(f"LR C={C:g}", f"StandardScaler + LogisticRegression(C={C:g})",
                                                 r.mean, r.std, round(r.seconds, 1), None,
                                                 fold_accuracy=r.fold_accuracy)
        log(f"LR C={C:g}: {r.mean:.4f} +- {r.std:.4f}")

    # The shipped configuration first: it is fixed, and a long run stopped early still has it.
    final = FINAL_CONFIG if not settings.quick else replace(FINAL_CONFIG, epochs=settings.max_epochs,
                                                            patience=settings.patience)
    score("final", "shipped configuration (kerasnn.tuning.FINAL_CONFIG)", final)

    def ep(n: int) -> int:
        return settings.epochs(n)

    def consider(row: RungResult, config: TrialConfig, current: tuple[TrialConfig, float]):
        """Carry ``config`` forward if it beats the current mean."""
        better = row.mean > current[1]
        row.kept = better
        if better:
            kept_rungs.append(row.rung)
            return config, row.mean
        return current

    # 0: the tutorial's recipe.
    base = replace(TUTORIAL_BASELINE, epochs=ep(50))
    row = score("0", RUNG_TITLES["0"], base)
    row.kept = True
    current = (base, row.mean)

    # 1: standardization.
    cfg = replace(current[0], standardize=True)
    current = consider(score("1", RUNG_TITLES["1"], cfg), cfg, current)

    # 2: depth / width (sub-rows; the best is the rung's number).
    shapes = {"2a": (32,), "2b": (64, 64), "2c": (256, 256, 256)}
    best2 = None
    for label, units in shapes.items():
        cfg = replace(current[0], hidden_units=units)
        r = score(label, f"{RUNG_TITLES['2']}: {'-'.join(map(str, units))}", cfg)
        if best2 is None or r.mean > best2[0].mean:
            best2 = (r, cfg)
    row2 = RungResult("2", f"{RUNG_TITLES['2']}: best = {'-'.join(map(str, best2[1].hidden_units))}",
                      best2[0].mean, best2[0].std, 0.0, best2[1].to_dict(), fold_accuracy=best2[0].fold_accuracy,
                      note=f"best of 2a-2{chr(ord('a') + len(shapes) - 1)}")
    rows.append(row2)
    current = consider(row2, best2[1], current)

    # 3: batch norm; 4: dropout.
    cfg = replace(current[0], batch_norm=True)
    current = consider(score("3", RUNG_TITLES["3"], cfg), cfg, current)
    cfg = replace(current[0], dropout=0.2)
    current = consider(score("4", RUNG_TITLES["4"] + " (p=0.2)", cfg), cfg, current)

    # 5: AdamW, small grid over learning rate and weight decay.
    grid = [(1e-3, 1e-2), (1e-3, 1e-1), (3e-3, 1e-1)] if not settings.quick else [(1e-3, 1e-1)]
    best5 = None
    for k, (lr, wd) in enumerate(grid):
        cfg = replace(current[0], optimizer="adamw", lr=lr, weight_decay=wd)
        r = score(f"5{chr(ord('a') + k)}", f"AdamW lr {lr:g}, weight decay {wd:g}", cfg)
        if best5 is None or r.mean > best5[0].mean:
            best5 = (r, cfg)
    row5 = RungResult("5", f"{RUNG_TITLES['5']}: best = lr {best5[1].lr:g}, wd {best5[1].weight_decay:g}",
                      best5[0].mean, best5[0].std, 0.0, best5[1].to_dict(), fold_accuracy=best5[0].fold_accuracy,
                      note="best of the 5x sub-rows")
    rows.append(row5)
    current = consider(row5, best5[1], current)

    # 6: learning-rate schedules (6a/6b/6c), decaying over the rung's epochs.
    n = current[0].epochs
    schedules = {
        "6a": ("StepLR", {"schedule": "step", "step_size": max(1, n // 3), "gamma": 0.3}),
        "6b": ("MultiStepLR", {"schedule": "multistep", "milestones": (max(1, n // 2), max(2, (3 * n) // 4)),
                                   "gamma": 0.3}),
        "6c": ("ExponentialLR", {"schedule": "exponential", "gamma": round(0.05 ** (1 / n), 4)}),
    }
    best6 = None
    for label, (name, kwargs) in schedules.items():
        cfg = replace(current[0], **kwargs)
        r = score(label, f"{RUNG_TITLES['6']}: {cfg.schedule_text()}", cfg)
        if best6 is None or r.mean > best6[0].mean:
            best6 = (r, cfg, name)
    row6 = RungResult("6", f"{RUNG_TITLES['6']}: best = {best6[2]}", best6[0].mean, best6[0].std, 0.0,
                      best6[1].to_dict(), fold_accuracy=best6[0].fold_accuracy, note="best of 6a-6c")
    rows.append(row6)
    current = consider(row6, best6[1], current)

    # 7: more epochs with early stopping on a validation split carved from each fold's training part.
    cfg = current[0]
    if cfg.schedule is not None:  # stretch the schedule over the longer run
        factor = settings.max_epochs / cfg.epochs
        cfg = replace(cfg, step_size=max(1, round(cfg.step_size * factor)),
                      milestones=tuple(max(1, round(m * factor)) for m in cfg.milestones),
                      gamma=round(cfg.gamma ** (1 / factor), 4) if cfg.schedule == "exponential" else cfg.gamma)
    cfg = replace(cfg, epochs=settings.max_epochs, patience=settings.patience)
    current = consider(score("7", f"{RUNG_TITLES['7']}: max {settings.max_epochs}, patience "
                                  f"{settings.patience}", cfg), cfg, current)

    # 8: Optuna search around the carried configuration; it searches on differently
    # shuffled folds (seed + 1) and the winner is re-scored on the ladder's folds.
    log(f"rung   8: Optuna search, budget {settings.budget:.0f}s, at most {settings.trials} trials")
    search_folds = cv_folds(y, settings.folds, settings.seed + 1)
    t0 = time.perf_counter()
    best8, study = search(x, y, replace(current[0], optimizer="adamw"), search_folds, budget=settings.budget,
                          trials=settings.trials, seed=seed, epochs=max(current[0].epochs, ep(50)),
                          patience=current[0].patience, log=log)
    search_seconds = time.perf_counter() - t0
    row8 = score("8", f"{RUNG_TITLES['8']}: {len(study.trials)} trials, best = {best8.describe()}", best8)
    row8.seconds = round(row8.seconds + search_seconds, 1)
    row8.note = (f"{len(study.trials)} trials in {search_seconds:.0f}s on folds shuffled with seed "
                 f"{settings.seed + 1}; re-scored on the ladder folds")
    current = consider(row8, best8, current)

    # 9 (beyond the tutorial's list): price_range is ordered, so score each row once and cut
    # the score at ordered thresholds (kerasnn.ordinal.CumulativeLogits) instead of a softmax
    # over unordered classes: 9a on the carried network, 9b with no hidden layer at all.
    best9 = None
    for label, units, what in (("9a", current[0].hidden_units, "on the carried network"),
                               ("9b", (), "with no hidden layer (ordinal logistic regression)")):
        cfg = replace(current[0], head="ordinal", hidden_units=units,  # no hidden layer: nothing to normalise or drop
                      batch_norm=current[0].batch_norm and bool(units), dropout=current[0].dropout if units else 0.0)
        r = score(label, f"{RUNG_TITLES['9']}: {what}", cfg)
        if best9 is None or r.mean > best9[0].mean:
            best9 = (r, cfg)
    row9 = RungResult("9", f"{RUNG_TITLES['9']}: best = {best9[1].describe()}", best9[0].mean, best9[0].std, 0.0,
                      best9[1].to_dict(), fold_accuracy=best9[0].fold_accuracy, note="best of 9a-9b")
    rows.append(row9)
    current = consider(row9, best9[1], current)


    state["current"] = current
    state["trials"] = len(study.trials)
    return snapshot(partial=False)


# ----------------------------------------------------------------------------- outputs


def _all_rows(result: dict) -> list[RungResult]:
    final = [result["final"]] if result.get("final") is not None else []
    return [*result["rows"], *final, *result["baselines"].values()]


def markdown_table(result: dict) -> str:
    """The ladder as a markdown table (every rung, the shipped config and the baselines)."""
    lines = [
        (f"Backend **{result['backend']}** (Keras {result['keras_version']}, optimizers: "
        f"{result['optimizer_source']}); data {Path(str(result['data_source'])).name} "
        f"({result['n_rows']} rows{', SYNTHETIC' if result['synthetic'] else ''}); "
        f"{result['settings']['folds']}-fold stratified CV (shuffle, seed {result['settings']['seed']})."),
        "",
        "| rung | technique | accuracy (mean) | std | seconds | carried forward |",
        "|---|---|---|---|---|---|",
    ]
    for r in _all_rows(result):
        kept = "" if r.kept is None else ("yes" if r.kept else "no")
        lines.append(f"| {r.rung} | {r.technique} | {r.mean:.4f} | {r.std:.4f} | {r.seconds:.1f} | {kept} |")
    if result.get("partial"):
        lines += ["", ("**PARTIAL: the run was still going when this was written; rows below the last one "
                  "are missing.**")]
    lines += ["", (f"Rungs carried forward: {', '.join(result['kept_rungs']) or 'none'}. "
              f"Total time {result['total_seconds']:.0f}s. Sub-rows (2a-c, 5a-c, 6a-c) feed their rung; "
              "a rung's number that picks the best sub-row or search trial on these folds is optimistic "
              "by the selection.")]
    return "\n".join(lines) + "\n"


def _csv_text(result: dict) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in _all_rows(result):
        writer.writerow([r.rung, r.technique, f"{r.mean:.6f}", f"{r.std:.6f}", f"{r.seconds:.1f}"])
    return buf.getvalue()


def plot_ladder(result: dict, path: Path) -> None:
    """Bar chart of every row's mean accuracy with std error bars; LR baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasnn.plots import save_figure_atomic

    bars = [*result["rows"], *([result["final"]] if result.get("final") is not None else [])]
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(bars)), 4.8))
    pos = np.arange(len(bars))
    colors = ["tab:green" if r.rung == "final" else ("tab:blue" if r.rung.isdigit() else "tab:gray")
              for r in bars]
    ax.bar(pos, [r.mean for r in bars], yerr=[r.std for r in bars], color=colors, capsize=3)
    for (name, r), style in zip(result["baselines"].items(), ("--", ":")):
        ax.axhline(r.mean, color="tab:red", linestyle=style, label=f"{r.rung}: {r.mean:.3f}")
    ax.set_xticks(pos, [r.rung for r in bars])
    low = min(r.mean - r.std for r in bars)
    ax.set_ylim(max(0.0, min(low, 0.9) - 0.02), 1.0)
    ax.set_xlabel("rung (blue: rung, gray: sub-row, green: shipped configuration)")
    ax.set_ylabel("cross-validated accuracy")
    title = f"tuning ladder, {result['backend']} backend, {result['settings']['folds']}-fold CV"
    if result["synthetic"]:
        title += " (SYNTHETIC data)"
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure_atomic(fig, path)


def write_results(result: dict, out: str | os.PathLike) -> dict[str, Path]:
    """Write ladder.md, ladder.csv, ladder.png and ladder.json into ``out`` (each atomically)."""
    from kerasnn.training import write_json_atomic

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    paths = {"md": out / "ladder.md", "csv": out / "ladder.csv", "png": out / "ladder.png",
             "json": out / "ladder.json"}
    write_text_atomic(paths["md"], markdown_table(result))
    write_text_atomic(paths["csv"], _csv_text(result))
    plot_ladder(result, paths["png"])
    payload = {k: v for k, v in result.items() if k not in ("rows", "final", "baselines")}
    payload["rows"] = [asdict(r) for r in _all_rows(result)]
    write_json_atomic(paths["json"], payload)
    return paths


def load_results(out: str | os.PathLike) -> dict:
    """The result dict of a ladder directory written by :func:`write_results` (from ladder.json)."""
    import json

    path = Path(out) / "ladder.json"
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TuningError(f"{path}: cannot read a ladder result ({exc})") from None
    rows = [RungResult(**r) for r in payload.pop("rows")]
    result = dict(payload)
    result["rows"] = [r for r in rows if r.rung != "final" and not r.rung.startswith("LR")]
    result["final"] = next((r for r in rows if r.rung == "final"), None)
    result["baselines"] = {f"logreg_C{r.rung.split('=')[1]}": r for r in rows if r.rung.startswith("LR")}
    return result


def rescore_final(data: PhonePriceData, out: str | os.PathLike, log=print) -> dict:
    """Re-score :data:`FINAL_CONFIG` on the folds of an existing ladder in ``out`` and rewrite it.

    Used when the shipped configuration is chosen after a backend's ladder has run: the
    other rows are kept as measured, only the ``final`` row is replaced.
    """
    result = load_results(out)
    settings = result["settings"]
    if settings.get("quick"):
        raise TuningError(f"{out}: a --quick ladder; rerun it instead")
    folds = cv_folds(data.y, settings["folds"], settings["seed"])
    cv = cross_validate(data.x, data.y, FINAL_CONFIG, folds, seed=settings["seed"])
    result["final"] = RungResult("final", "shipped configuration (kerasnn.tuning.FINAL_CONFIG)", cv.mean, cv.std,
                                 round(cv.seconds, 1), FINAL_CONFIG.to_dict(), fold_accuracy=cv.fold_accuracy,
                                 note="re-scored after the ladder ran (rescore_final)")
    log(f"rung final: {cv.mean:.4f} +- {cv.std:.4f}  ({cv.seconds:.0f}s)  {FINAL_CONFIG.describe()}")
    write_results(result, out)
    return result


# ----------------------------------------------------------------------------- final model


def train_final(data: PhonePriceData, config: TrialConfig, seed: int = 0, epochs: int | None = None):
    """Train ``config`` on every row of ``data``; return ``(model, standardizer)``.

    Early stopping needs a validation part; to use all rows, the final fit runs a
    fixed ``epochs`` (the caller passes the median best epoch of the cross-validation)
    with no early stopping. Same data, config, seed and backend give the same model.
    """
    fixed = replace(config, patience=None, epochs=epochs or config.epochs)
    standardizer = Standardizer.fit(data.x) if fixed.standardize else Standardizer.identity(data.x.shape[1])
    model, _ = fit_model(fixed, standardizer.transform(data.x), data.y, seed=seed)
    return model, standardizer
