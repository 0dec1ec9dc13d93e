"""The one predictor behind the HTTP service and the Gradio UI.

:class:`Predictor` wraps a single ``onnxruntime.InferenceSession``, created once. Loading
refuses with :class:`kerasnn.errors.ModelFileError` (one line naming the file) when the
file is missing, does not match its ``.sha256`` record, is not an ONNX model, lacks the
schema metadata, or does not have exactly one float32 input ``[N, F]`` and a float32
output ``[N, C]`` (names from the metadata, ``N`` dynamic, ``F`` features and ``C``
classes from the metadata). ONNX files hold no pickles and nothing else is loaded.

:meth:`Predictor.predict` takes a float32 ``[N, F]`` array of raw (unscaled) features in
the schema's order, checks every value (:class:`~kerasnn.serve.validation.ValueChecker`)
and returns a :class:`Prediction`. The session is thread-safe; so is the predictor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from kerasnn.errors import ModelFileError

from .modelfile import ModelSchema, read_verified
from .validation import InputValidationError, Problem, ValueChecker

__all__ = ["DEFAULT_MAX_ROWS", "Prediction", "Predictor"]

#: Largest batch one request may carry (configurable per predictor).
DEFAULT_MAX_ROWS = 10_000


@dataclass(frozen=True)
class Prediction:
    """``probabilities`` float32 ``[N, C]``; ``labels`` int64 ``[N]`` (argmax, the class index)."""

    probabilities: np.ndarray
    labels: np.ndarray


class Predictor:
    """A verified ONNX phone-price model and its schema, ready to predict."""

    def __init__(self, model_path: str | os.PathLike, *, threads: int = 1, max_rows: int = DEFAULT_MAX_ROWS):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.path = Path(model_path)
        self.max_rows = max_rows
        data = read_verified(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidProtobuf/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(f"{self.path}: not a valid ONNX model: {first[:200]}") from None
        meta = self.session.get_modelmeta()
        self.schema = ModelSchema.from_metadata(dict(meta.custom_metadata_map), self.path)
        self._check_signature()
        self.checker = ValueChecker(self.schema)
        self.version = str(meta.version or 1)
        self.sha256 = (self.path.with_name(self.path.name + ".sha256").read_text().split() or [""])[0]
        self._outputs = [self.schema.output_name]
        self._feed_name = self.schema.input_name

    def _check_signature(self) -> None:
        s = self.schema

        def refuse(why: str) -> ModelFileError:
            return ModelFileError(f"{self.path}: {why}")

        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise refuse(f"expected exactly one input {s.input_name!r}, the graph has {len(inputs)}: {names}")
        _check_arg(inputs[0], s.input_name, s.n_features, "input", refuse)
        outputs = {o.name: o for o in self.session.get_outputs()}
        if s.output_name not in outputs:
            raise refuse(f"no output {s.output_name!r} (the graph has: {', '.join(outputs) or 'none'})")
        _check_arg(outputs[s.output_name], s.output_name, s.n_classes, "output", refuse)

    # -- prediction ---------------------------------------------------------------------

    def check_shape(self, x: np.ndarray) -> None:
        """Raise :class:`InputValidationError` unless ``x`` is ``[N, F]`` with ``1 <= N <= max_rows``."""
        f = self.schema.n_features
        if x.ndim != 2 or x.shape[1] != f:
            raise InputValidationError([Problem(None, None, f"expected shape [N, {f}], got {list(x.shape)}")])
        if not 1 <= x.shape[0] <= self.max_rows:
            raise InputValidationError(
                [Problem(None, None, f"expected 1 to {self.max_rows} rows, got {x.shape[0]}")])

    def predict(self, x: np.ndarray, *, checked: bool = False) -> Prediction:
        """Probabilities and labels for float32 ``[N, F]`` raw features.

        Values are checked unless ``checked`` says the caller already did
        (:meth:`ValueChecker.check`); :class:`InputValidationError` on any bad value.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.check_shape(x)
        if not checked:
            self.checker.check(x)
        probs = self.session.run(self._outputs, {self._feed_name: x})[0]
        return Prediction(probs, probs.argmax(axis=1).astype(np.int64))

    def info(self) -> dict:
        """Model facts for people: path, sha256, schema and the metadata strings."""
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "version": self.version,
            "schema": self.schema.as_dict(),
            "metadata": {k: v for k, v in self.schema.metadata.items() if k != "kerasnn.schema"},
        }


def _check_arg(arg, name: str, width: int, what: str, refuse) -> None:
    if arg.name != name:
        raise refuse(f"{what} is named {arg.name!r}, the schema metadata says {name!r}")
    if arg.type != "tensor(float)":
        raise refuse(f"{what} {name!r} has type {arg.type}, expected tensor(float) (float32)")
    shape = list(arg.shape)
    if len(shape) != 2 or shape[1] != width or isinstance(shape[0], int):
        raise refuse(f"{what} {name!r} has shape {shape}, expected [N, {width}] with a dynamic batch N")
