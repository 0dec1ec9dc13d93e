"""Reading and checking a served model file: its sha256 record and its schema metadata.

Contract
--------
- :func:`read_verified` returns the bytes of ``path`` only if the file exists and its
  sha256 equals the one recorded beside it in ``<path>.sha256`` (``sha256sum`` format:
  ``"<64 hex>  <file name>"``; the name must be the model's own file name). A missing
  record is a refusal too. The bytes returned are the bytes hashed, so the file cannot
  change between the check and the load.
- :meth:`ModelSchema.from_metadata` turns the ONNX ``metadata_props`` written by
  ``kerasnn.schema.model_metadata`` into the feature names, kinds, valid ranges and
  class names the service validates against. A served model carries its own schema:
  the :class:`kerasnn.schema.Feature` type (and its checks) comes from ``kerasnn.schema``,
  every value comes from the model's metadata.

Every refusal raises :class:`kerasnn.errors.ModelFileError` with a one-line message that
starts with the file's path.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kerasnn.errors import ModelFileError
from kerasnn.schema import Feature

__all__ = ["SCHEMA_KEY", "ModelSchema", "read_verified", "sha256_record_path"]

SCHEMA_KEY = "kerasnn.schema"
_RECORD_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def sha256_record_path(path: Path) -> Path:
    """Where the sha256 record of ``path`` lives: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def read_verified(path: str | Path) -> bytes:
    """The bytes of the model at ``path``, checked against ``<path>.sha256``."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    record = sha256_record_path(path)
    if not record.is_file():
        raise ModelFileError(f"{path}: no sha256 record beside it (expected {record.name})")
    try:
        data = path.read_bytes()
        line = record.read_text(encoding="utf-8").strip().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: cannot read the model or its sha256 record: {exc}") from None
    match = _RECORD_LINE.match(line[0]) if len(line) == 1 else None
    if match is None:
        raise ModelFileError(f"{path}: {record.name} is not one '<sha256>  <file name>' line")
    expected, named = match.group(1).lower(), match.group(2)
    if named != path.name:
        raise ModelFileError(f"{path}: {record.name} records a different file ({named!r})")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelFileError(f"{path}: sha256 mismatch: file is {actual}, {record.name} says {expected}")
    return data


@dataclass(frozen=True)
class ModelSchema:
    """What a model promises: input/output names, features (in input order) and classes."""

    features: tuple[Feature, ...]
    classes: tuple[str, ...]
    target: str
    input_name: str
    output_name: str
    metadata: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def as_dict(self) -> dict:
        """The schema as JSON-able data, in the layout of ``kerasnn.schema.schema_dict``."""
        return {
            "features": [asdict(f) for f in self.features],
            "target": self.target,
            "classes": list(self.classes),
            "input": self.input_name,
            "output": self.output_name,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: str | Path) -> ModelSchema:
        """Parse and check the schema metadata; :class:`ModelFileError` naming ``path`` if bad."""

        def refuse(why: str) -> ModelFileError:
            return ModelFileError(f"{path}: {why}")

        raw = meta.get(SCHEMA_KEY)
        if raw is None:
            raise refuse(f"no {SCHEMA_KEY!r} metadata: not a kerasnn phone-price export")
        try:
            doc = json.loads(raw)
            features = tuple(Feature.from_dict(f) for f in doc["features"])
            classes = tuple(doc["classes"])
            target, input_name, output_name = doc["target"], doc["input"], doc["output"]
        except (ValueError, KeyError, TypeError) as exc:
            raise refuse(f"{SCHEMA_KEY!r} metadata is malformed: {type(exc).__name__}: {exc}") from None
        names = [f.name for f in features]
        if not features or len(set(names)) != len(names):
            raise refuse(f"{SCHEMA_KEY!r} metadata: feature names must be non-empty and unique")
        if len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
            raise refuse(f"{SCHEMA_KEY!r} metadata: classes must be at least two non-empty strings")
        if not all(isinstance(s, str) and s for s in (target, input_name, output_name)):
            raise refuse(f"{SCHEMA_KEY!r} metadata: target, input and output must be non-empty strings")
        for key, expected in (("feature_names", names), ("class_names", list(classes))):
            if key in meta:
                try:
                    copy = json.loads(meta[key])
                except ValueError:
                    copy = None
                if copy != expected:
                    raise refuse(f"metadata {key!r} disagrees with {SCHEMA_KEY!r}")
        return cls(features, classes, target, input_name, output_name, dict(meta))
