"""Service settings and the objects every route shares.

:class:`ServiceSettings` is the whole configuration (also readable from environment
variables, which is how ``uvicorn --workers N`` children get it: see
:meth:`ServiceSettings.from_env`). :class:`Service` loads the model once and holds the
predictor, the row parser, the CSV codec and the metrics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from kerasnn.errors import KerasnnError
from kerasnn.schema import MODEL_NAME

from .csvio import CsvCodec
from .metrics import ServiceMetrics
from .predictor import DEFAULT_MAX_ROWS, Predictor
from .rows import RowParser

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MODEL_PATH",
    "ENV_PREFIX",
    "MODEL_VERSION",
    "Service",
    "ServiceSettings",
    "SettingsError",
]

#: Default model, relative to the current working directory (the repository root).
DEFAULT_MODEL_PATH = Path("models") / "phone_price.onnx"
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: The only version served (the Triton repository export writes version directory 1 too).
MODEL_VERSION = "1"
ENV_PREFIX = "KERASNN_SERVE_"


class SettingsError(KerasnnError, ValueError):
    """A service setting (option or environment variable) is invalid."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service needs; environment names are ``KERASNN_SERVE_<FIELD>``."""

    model_path: Path = DEFAULT_MODEL_PATH
    threads: int = 1
    max_rows: int = DEFAULT_MAX_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    model_name: str = MODEL_NAME
    ui: bool = True

    def __post_init__(self):
        for name in ("threads", "max_rows", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")

    def to_env(self) -> dict[str, str]:
        """The settings as ``KERASNN_SERVE_*`` variables (model path made absolute)."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "model_path":
                value = Path(value).resolve()
            elif isinstance(value, bool):
                value = int(value)
            env[ENV_PREFIX + f.name.upper()] = str(value)
        return env

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServiceSettings:
        """Settings from ``KERASNN_SERVE_*`` variables; defaults for the ones not set."""
        environ = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None:
                continue
            try:
                if f.name == "model_path":
                    kwargs[f.name] = Path(raw)
                elif f.name == "ui":
                    if raw.strip().lower() not in ("0", "1", "true", "false", "yes", "no"):
                        raise ValueError(raw)
                    kwargs[f.name] = raw.strip().lower() in ("1", "true", "yes")
                elif f.name == "model_name":
                    kwargs[f.name] = raw
                else:
                    kwargs[f.name] = int(raw)
            except ValueError:
                raise SettingsError(f"{ENV_PREFIX + f.name.upper()}={raw!r} is not a valid {f.name}") from None
        return cls(**kwargs)


class Service:
    """The loaded model and the helpers built from its schema (shared by all routes)."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.predictor = Predictor(settings.model_path, threads=settings.threads, max_rows=settings.max_rows)
        schema = self.predictor.schema
        self.schema = schema
        self.model_name = settings.model_name
        self.model_version = MODEL_VERSION
        self.rows = RowParser(schema, self.predictor.checker)
        self.csv = CsvCodec(schema, self.predictor.checker)
        self.metrics = ServiceMetrics(schema.classes)
