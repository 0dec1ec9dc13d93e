"""The phone-price schema: the single definition of features, ranges and classes.

Pure Python (no Keras, no NumPy): training, export, the service and the UI all read
it. The exported ONNX model carries a JSON copy of it in its metadata
(:func:`model_metadata`), so a served model brings its own schema and the serving
side never needs this module's Python objects.

Valid ranges
------------
``observed_min``/``observed_max`` are the limits seen in the full 2,000-row public
data set (see ``../shared/data/phone_price/README.md``). ``valid_min``/``valid_max``
are deliberately wider: they accept any phone that could plausibly exist (a
10,000 mAh battery, 16 GB of RAM) and reject values that are surely typos or unit
mistakes (negative sizes; RAM given in GB instead of MB falls under 64 and is
rejected). Inside the valid range but outside the observed one the model extrapolates:
the schema keeps both so a user interface can say so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = [
    "CLASS_NAMES",
    "FEATURES",
    "FEATURE_NAMES",
    "INPUT_NAME",
    "MODEL_NAME",
    "N_CLASSES",
    "N_FEATURES",
    "OUTPUT_NAME",
    "REQUIRED_METADATA",
    "SCHEMA_VERSION",
    "TARGET",
    "Feature",
    "check_model_metadata",
    "feature",
    "model_metadata",
    "schema_dict",
]

SCHEMA_VERSION = "1"
MODEL_NAME = "phone_price"
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
TARGET = "price_range"
CLASS_NAMES = ("low cost", "medium cost", "high cost", "very high cost")

FEATURE_KINDS = ("int", "float", "flag")


@dataclass(frozen=True)
class Feature:
    """One input column.

    ``kind`` is ``"int"`` (a whole number), ``"float"`` or ``"flag"`` (exactly 0 or 1).
    """

    name: str
    kind: str
    unit: str
    description: str
    valid_min: float
    valid_max: float
    observed_min: float
    observed_max: float

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Feature name must be a non-empty string, got {self.name!r}")
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"Feature {self.name!r}: kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if not (self.valid_min <= self.observed_min <= self.observed_max <= self.valid_max):
            raise ValueError(f"Feature {self.name!r}: ranges must nest valid_min <= observed <= valid_max")

    @property
    def label(self) -> str:
        """Human label with the unit, e.g. ``"ram (MB)"``."""
        return f"{self.name} ({self.unit})" if self.unit else self.name

    @classmethod
    def from_dict(cls, doc: dict) -> Feature:
        """A Feature from one entry of :func:`schema_dict`'s ``features`` (e.g. read from a model).

        ``unit`` and ``description`` default to empty, the observed range to the valid
        one. Raises KeyError for a missing field, ValueError/TypeError for a bad one.
        """
        return cls(
            name=doc["name"],
            kind=doc["kind"],
            unit=str(doc.get("unit", "")),
            description=str(doc.get("description", "")),
            valid_min=float(doc["valid_min"]),
            valid_max=float(doc["valid_max"]),
            observed_min=float(doc.get("observed_min", doc["valid_min"])),
            observed_max=float(doc.get("observed_max", doc["valid_max"])),
        )


def _flag(name: str, description: str) -> Feature:
    return Feature(name, "flag", "", description, 0, 1, 0, 1)


# Canonical order: the column order of the public data set, and the order of the
# model's input vector.
FEATURES: tuple[Feature, ...] = (
    Feature("battery_power", "int", "mAh", "energy the battery can store", 100, 10000, 501, 1998),
    _flag("blue", "has Bluetooth"),
    Feature("clock_speed", "float", "GHz", "processor speed", 0.1, 5.0, 0.5, 3.0),
    _flag("dual_sim", "dual SIM support"),
    Feature("fc", "int", "MP", "front camera resolution", 0, 100, 0, 19),
    _flag("four_g", "has 4G"),
    Feature("int_memory", "int", "GB", "internal memory", 1, 1024, 2, 64),
    Feature("m_dep", "float", "cm", "phone depth", 0.05, 3.0, 0.1, 1.0),
    Feature("mobile_wt", "int", "g", "weight", 50, 500, 80, 200),
    Feature("n_cores", "int", "cores", "processor cores", 1, 16, 1, 8),
    Feature("pc", "int", "MP", "primary camera resolution", 0, 200, 0, 20),
    Feature("px_height", "int", "px", "screen resolution height", 0, 5000, 0, 1960),
    Feature("px_width", "int", "px", "screen resolution width", 0, 5000, 500, 1998),
    Feature("ram", "int", "MB", "RAM", 64, 32768, 256, 3998),
    Feature("sc_h", "int", "cm", "screen height", 1, 40, 5, 19),
    Feature("sc_w", "int", "cm", "screen width", 0, 40, 0, 18),
    Feature("talk_time", "int", "h", "longest call on one battery charge", 0, 100, 2, 20),
    _flag("three_g", "has 3G"),
    _flag("touch_screen", "has a touch screen"),
    _flag("wifi", "has Wi-Fi"),
)

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
N_FEATURES = len(FEATURES)
N_CLASSES = len(CLASS_NAMES)
_BY_NAME = {f.name: f for f in FEATURES}


def feature(name: str) -> Feature:
    """The :class:`Feature` called ``name``; ``KeyError`` naming it if unknown."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown feature {name!r}; expected one of {', '.join(FEATURE_NAMES)}") from None


def schema_dict() -> dict:
    """The schema as plain JSON-able data (what the ONNX metadata carries)."""
    return {
        "version": SCHEMA_VERSION,
        "features": [asdict(f) for f in FEATURES],
        "target": TARGET,
        "classes": list(CLASS_NAMES),
        "input": INPUT_NAME,
        "output": OUTPUT_NAME,
    }


#: Provenance every exported model carries beside the schema: where it was trained
#: (``backend``, ``keras_version``, ``kerasnn_version``), on what (``data_sha256``,
#: ``synthetic`` "true"/"false"), how well it did (``accuracy``, a number in [0, 1]) and how
#: that number was measured (``accuracy_kind``, e.g. "held-out 20% test split").
REQUIRED_METADATA = ("backend", "keras_version", "kerasnn_version", "data_sha256", "synthetic",
                     "accuracy", "accuracy_kind")


def model_metadata(**extra: object) -> dict[str, str]:
    """ONNX ``metadata_props`` for an exported phone-price model.

    Keys (all values are strings; lists and dicts are JSON):

    - ``kerasnn.schema``: :func:`schema_dict` as JSON, the contract the service reads;
    - ``feature_names``, ``class_names``: JSON lists (convenience copies);
    - every keyword in ``extra`` (``backend``, ``data_sha256``, ``accuracy``, ...),
      JSON-encoded unless already a string.

    An exported model must also pass :func:`check_model_metadata`.
    """
    meta = {
        "kerasnn.schema": json.dumps(schema_dict(), sort_keys=True),
        "feature_names": json.dumps(list(FEATURE_NAMES)),
        "class_names": json.dumps(list(CLASS_NAMES)),
    }
    for key, value in extra.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return meta


def check_model_metadata(meta: dict[str, str]) -> None:
    """Raise ``ValueError`` unless ``meta`` (string values, as in ONNX) carries every key
    in :data:`REQUIRED_METADATA`, with ``synthetic`` "true" or "false" and ``accuracy``
    a JSON number in [0, 1]. The message names the offending keys."""
    missing = [key for key in REQUIRED_METADATA if key not in meta]
    if missing:
        raise ValueError(f"model metadata lacks {', '.join(missing)} (required: {', '.join(REQUIRED_METADATA)})")
    if meta["synthetic"] not in ("true", "false"):
        raise ValueError(f"model metadata synthetic must be 'true' or 'false', got {meta['synthetic']!r}")
    try:
        accuracy = json.loads(meta["accuracy"])
    except (TypeError, json.JSONDecodeError):
        accuracy = None
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 <= accuracy <= 1:
        raise ValueError(f"model metadata accuracy must be a number in [0, 1], got {meta['accuracy']!r}")
