"""Phone-price data: locate, load and validate the CSV, split it, standardize it.

No Keras here: a data error is reported before any backend is imported.

Where the data comes from (:func:`resolve_data_path`): an explicit path, else
``$KERASNN_DATA``, else ``data/phone_price.csv``. Every check in
:func:`load_phone_prices` raises :class:`~kerasnn.errors.DataError` with the file,
the line as numbered in the file (header = line 1), the column and the value.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kerasnn.errors import DataError
from kerasnn.schema import CLASS_NAMES, FEATURE_NAMES, FEATURES, N_CLASSES, TARGET

__all__ = [
    "DATA_ENV_VAR",
    "DEFAULT_DATA_PATH",
    "PhonePriceData",
    "Standardizer",
    "file_sha256",
    "load_phone_prices",
    "resolve_data_path",
    "stratified_split",
    "synthetic_phone_prices",
    "validate_frame",
]

DATA_ENV_VAR = "KERASNN_DATA"
DEFAULT_DATA_PATH = Path("data/phone_price.csv")


@dataclass(frozen=True)
class PhonePriceData:
    """Validated rows: ``x`` float32 [N, 20] in schema order, ``y`` int64 [N] (or None).

    ``source`` is the file path, or ``"synthetic(n=..., seed=...)"``; ``sha256`` is
    the file's digest (None for synthetic data).
    """

    x: np.ndarray
    y: np.ndarray | None
    source: str
    sha256: str | None
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.x)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_data_path(path: str | os.PathLike | None = None) -> Path:
    """The data file to read: ``path``, else ``$KERASNN_DATA``, else ``data/phone_price.csv``.

    Raises DataError saying where it looked and how to get the data when no file is
    found.
    """
    if path is not None:
        candidate, origin = Path(path), "--data"
    elif os.environ.get(DATA_ENV_VAR):
        candidate, origin = Path(os.environ[DATA_ENV_VAR]), f"${DATA_ENV_VAR}"
    else:
        candidate, origin = DEFAULT_DATA_PATH, "the default location"
    if not candidate.is_file():
        raise DataError(
            f"{candidate}: no data file here (from {origin}); download train.csv of the public "
            f"'Mobile Price Classification' data set and pass --data PATH, set ${DATA_ENV_VAR}, or put it at "
            f"{DEFAULT_DATA_PATH} (see data/README.md); or try the pipeline with --synthetic N"
        )
    return candidate


def load_phone_prices(path: str | os.PathLike, *, require_target: bool = True) -> PhonePriceData:
    """Read and validate a phone-price CSV.

    Columns are matched by name (any order); the 20 features are required, the target
    ``price_range`` is required when ``require_target`` (else optional and ignored
    if absent); any other column is an error. Values must be finite numbers inside
    the schema's valid range, whole numbers for integer features, 0/1 for flags, and
    labels in 0..3. An empty or header-only file is an error.
    """
    path = Path(path)
    try:
        # header=None keeps duplicated names visible (pandas would rename them "x.1").
        raw = pd.read_csv(path, dtype=str, header=None, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (expected a header line and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).strip()})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    frame = raw.iloc[1:].set_axis(list(raw.iloc[0]), axis=1).reset_index(drop=True)
    x, y = validate_frame(frame, str(path), require_target=require_target)
    return PhonePriceData(x=x, y=y, source=str(path), sha256=file_sha256(path))


def validate_frame(
    frame: pd.DataFrame, source: str = "<data>", *, require_target: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a frame of strings or numbers; return ``(x, y)`` as in :class:`PhonePriceData`.

    Line numbers in messages assume row i of the frame is line i + 2 of its file.
    """
    columns = [str(c).strip() for c in frame.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise DataError(f"{source}, line 1: duplicated column {duplicated[0]!r}")
    frame = frame.set_axis(columns, axis=1)
    unknown = [c for c in columns if c not in FEATURE_NAMES and c != TARGET]
    if unknown:
        raise DataError(
            f"{source}, line 1: unexpected column {unknown[0]!r}; expected the 20 features "
            f"and {TARGET!r} (see data/README.md)"
        )
    missing = [c for c in FEATURE_NAMES if c not in columns]
    if require_target and TARGET not in columns:
        missing.append(TARGET)
    if missing:
        raise DataError(f"{source}, line 1: missing column {missing[0]!r}" + (
            f" (and {len(missing) - 1} more: {', '.join(missing[1:])})" if len(missing) > 1 else ""))
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows after the header")

    x = np.empty((len(frame), len(FEATURES)), dtype=np.float32)
    for j, feat in enumerate(FEATURES):
        values = _numbers(frame[feat.name], source, feat.name)
        bad = ~np.isfinite(values) | (values < feat.valid_min) | (values > feat.valid_max)
        if feat.kind == "flag":
            bad |= (values != 0) & (values != 1)
            why = "must be 0 or 1"
        elif feat.kind == "int":
            bad |= values != np.round(values)
            why = f"must be a whole number in {feat.valid_min:g}..{feat.valid_max:g} {feat.unit}".rstrip()
        else:
            why = f"must be a number in {feat.valid_min:g}..{feat.valid_max:g} {feat.unit}".rstrip()
        _raise_first(bad, frame[feat.name], source, feat.name, why)
        x[:, j] = values

    y = None
    if TARGET in columns:
        labels = _numbers(frame[TARGET], source, TARGET)
        bad = ~np.isin(labels, np.arange(N_CLASSES))
        _raise_first(bad, frame[TARGET], source, TARGET,
                     f"must be a class index 0..{N_CLASSES - 1} ({', '.join(CLASS_NAMES)})")
        y = labels.astype(np.int64)
    return x, y


def _numbers(column: pd.Series, source: str, name: str) -> np.ndarray:
    """Parse a column to float64, raising on the first cell that is not a number."""
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64)
    values = pd.to_numeric(column.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    text = column.to_numpy(dtype=object)
    # to_numeric turns "nan"/"" into NaN as well: report those as not-a-number too.
    _raise_first(np.isnan(values), column, source, name, "is not a number", text=text)
    return values


def _raise_first(bad: np.ndarray, column: pd.Series, source: str, name: str, why: str, text=None) -> None:
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    value = (text if text is not None else column.to_numpy(dtype=object))[i]
    raise DataError(f"{source}, line {i + 2}, column {name!r}: value {value!r} {why}")


def synthetic_phone_prices(n: int, seed: int = 0) -> PhonePriceData:
    """``n`` schema-valid rows with a known labelling rule, for trying the pipeline.

    Features are drawn uniformly over the *observed* ranges (integers and flags
    rounded). Labelling rule: score = ram/3998 + 0.25*battery_power/1998 +
    0.25*(px_height*px_width)/(1960*1998); the label is the score's quartile within
    the sample, so classes are balanced. Nothing measured on these rows says
    anything about real phones.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 8:
        raise ValueError(f"synthetic: n must be an integer >= 8, got {n!r}")
    rng = np.random.default_rng(seed)
    x = np.empty((n, len(FEATURES)), dtype=np.float64)
    for j, feat in enumerate(FEATURES):
        col = rng.uniform(feat.observed_min, feat.observed_max, size=n)
        if feat.kind in ("int", "flag"):
            col = np.round(col)
        else:
            col = np.round(col, 1)
        x[:, j] = col
    idx = {name: j for j, name in enumerate(FEATURE_NAMES)}
    score = (x[:, idx["ram"]] / 3998 + 0.25 * x[:, idx["battery_power"]] / 1998
             + 0.25 * x[:, idx["px_height"]] * x[:, idx["px_width"]] / (1960 * 1998))
    ranks = np.argsort(np.argsort(score, kind="stable"), kind="stable")
    y = (ranks * N_CLASSES // n).astype(np.int64)
    return PhonePriceData(x=x.astype(np.float32), y=y, source=f"synthetic(n={n}, seed={seed})",
                          sha256=None, synthetic=True)


def stratified_split(x: np.ndarray, y: np.ndarray, test_size: float = 0.2, seed: int = 0):
    """Stratified, shuffled ``(x_train, x_test, y_train, y_test)`` (scikit-learn)."""
    from sklearn.model_selection import train_test_split

    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be a float strictly between 0 and 1, got {test_size!r}")
    n_test = math.ceil(test_size * len(y))
    if n_test < N_CLASSES or len(y) - n_test < N_CLASSES:
        raise ValueError(
            f"test_size={test_size} leaves {n_test} test and {len(y) - n_test} training rows; "
            f"each part needs at least {N_CLASSES} (one per class)"
        )
    return train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``(x - mean) / scale``, fitted with scikit-learn's StandardScaler.

    A feature with zero variance gets scale 1 (as StandardScaler does). Stored as
    two plain float lists so it saves to JSON and exports into the ONNX graph.
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(np.asarray(x, dtype=np.float64))
        return cls(tuple(float(v) for v in scaler.mean_), tuple(float(v) for v in scaler.scale_))

    @classmethod
    def identity(cls, n_features: int = len(FEATURES)) -> Standardizer:
        return cls((0.0,) * n_features, (1.0,) * n_features)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {"feature_names": list(FEATURE_NAMES), "mean": list(self.mean), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, data: dict, source: str = "<standardizer>") -> Standardizer:
        try:
            names, mean, scale = data["feature_names"], data["mean"], data["scale"]
        except (KeyError, TypeError):
            raise DataError(f"{source}: expected keys feature_names, mean, scale") from None
        if list(names) != list(FEATURE_NAMES):
            raise DataError(f"{source}: feature_names do not match the schema")
        if len(mean) != len(FEATURES) or len(scale) != len(FEATURES):
            raise DataError(f"{source}: mean and scale need {len(FEATURES)} values each")
        if not all(math.isfinite(v) for v in (*mean, *scale)) or min(scale) <= 0:
            raise DataError(f"{source}: mean must be finite and scale finite and positive")
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in scale))
