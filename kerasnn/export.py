"""Export a trained run to ONNX: raw features in, class probabilities out.

The exported graph is ``Rescaling(1/scale, -mean/scale) -> PhonePriceModel -> Softmax``,
so it takes the 20 raw features in schema order as input ``features`` (float32
[batch, 20], dynamic batch) and returns ``probabilities`` (float32 [batch, 4]).
``keras.layers.Rescaling`` is used for the standardization rather than
``Normalization``, whose statistics tf2onnx turns into extra graph inputs.

Every export is checked before it is kept: ``onnx.checker``, exactly one input and
one output with the expected names, types and shapes, and onnxruntime output equal
to Keras ``predict`` (atol 1e-5) at batch sizes 1, 7 and 1000. The file and its
``.sha256`` record (``sha256sum`` format, which ``kerasnn serve`` checks) are
written through temporary files and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from kerasnn.atomic import atomic_path, write_text_atomic
from kerasnn.errors import KerasnnError, OutputError
from kerasnn.schema import (
    INPUT_NAME,
    N_CLASSES,
    N_FEATURES,
    OUTPUT_NAME,
    check_model_metadata,
    model_metadata,
)

__all__ = [
    "PARITY_ATOL",
    "PARITY_BATCH_SIZES",
    "ExportError",
    "export_onnx",
    "serving_model",
    "sha256_record_path",
    "write_sha256_record",
]

PARITY_BATCH_SIZES = (1, 7, 1000)
PARITY_ATOL = 1e-5


class ExportError(KerasnnError, RuntimeError):
    """The exported ONNX graph is invalid or does not reproduce Keras' predictions."""


def serving_model(model, standardizer):
    """A functional Keras model: raw features -> standardize -> ``model`` -> softmax."""
    import keras

    mean = np.asarray(standardizer.mean, dtype=np.float64)
    scale = np.asarray(standardizer.scale, dtype=np.float64)
    inputs = keras.Input(shape=(N_FEATURES,), dtype="float32", name=INPUT_NAME)
    x = keras.layers.Rescaling(scale=(1.0 / scale).tolist(), offset=(-mean / scale).tolist(),
                               name="standardize")(inputs)
    x = model(x, training=False)
    outputs = keras.layers.Softmax(name=OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="phone_price_serving")


def sha256_record_path(onnx_path: str | os.PathLike) -> Path:
    """Where the sha256 record of ``onnx_path`` lives: ``<file>.sha256`` beside it."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.name + ".sha256")


def write_sha256_record(onnx_path: str | os.PathLike) -> str:
    """Write ``<sha256>  <file name>`` beside ``onnx_path`` (atomically); return the digest."""
    onnx_path = Path(onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    write_text_atomic(sha256_record_path(onnx_path), f"{digest}  {onnx_path.name}\n")
    return digest


def _rename_value(graph, old: str, new: str) -> None:
    """Rename a value (graph input/output) everywhere it appears in ``graph``."""
    if old == new:
        return
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def _check_graph(proto) -> None:
    """One float input [?, 20] named features, one float output [?, 4] named probabilities."""
    import onnx

    onnx.checker.check_model(proto)
    graph = proto.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ExportError(
            f"exported graph has {len(inputs)} inputs and {len(graph.output)} outputs; expected exactly one "
            "of each (a preprocessing layer whose statistics became graph inputs?)")
    for value, dim in ((inputs[0], N_FEATURES), (graph.output[0], N_CLASSES)):
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        if tensor.elem_type != onnx.TensorProto.FLOAT or len(dims) != 2 or dims[1] != dim or dims[0] not in (None, 0):
            raise ExportError(f"graph value {value.name!r} has type {tensor.elem_type} and dims {dims}; "
                              f"expected float32 [batch, {dim}] with a dynamic batch")


def _check_parity(path: Path, keras_model, x: np.ndarray) -> float:
    """Largest |onnxruntime - keras predict| over :data:`PARITY_BATCH_SIZES`; raise past the tolerance."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in PARITY_BATCH_SIZES:
        rows = x[np.arange(batch) % len(x)].astype(np.float32)
        expected = np.asarray(keras_model.predict(rows, batch_size=1024, verbose=0))
        (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: rows})
        diff = float(np.max(np.abs(got - expected)))
        worst = max(worst, diff)
        if not diff <= PARITY_ATOL:
            raise ExportError(f"onnxruntime differs from Keras predict by {diff:.3g} at batch {batch} "
                              f"(tolerance {PARITY_ATOL:g}); the export is not kept")
    return worst


def export_onnx(model, standardizer, out: str | os.PathLike, *, sample_x: np.ndarray,
                metadata: dict | None = None, opset: int | None = None) -> dict:
    """Export ``model`` (logits) with ``standardizer`` to ONNX at ``out``.

    ``sample_x`` are raw feature rows used for the parity check (any number of rows;
    they are cycled up to 1000). ``metadata`` entries are added to the schema
    metadata (see :func:`kerasnn.schema.model_metadata`) and must supply the
    provenance keys of :data:`kerasnn.schema.REQUIRED_METADATA` that the export does not
    fill itself (``data_sha256``, ``synthetic``, ``accuracy``, ``accuracy_kind``). Returns a summary with the
    sha256 and the largest parity difference. Nothing is written at ``out`` unless
    every check passes.
    """
    import keras
    import onnx

    import kerasnn

    props = model_metadata(
        backend=keras.backend.backend(),
        keras_version=keras.__version__,
        kerasnn_version=kerasnn.__version__,
        standardizer_mean=list(standardizer.mean),
        standardizer_scale=list(standardizer.scale),
        **(metadata or {}),
    )
    try:  # before the (slow) export: a model without provenance is never built
        check_model_metadata(props)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    out = Path(out)
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; give the .onnx file path")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out.parent}: cannot write here ({exc.strerror})") from None
    with atomic_path(out, suffix=".onnx") as tmp:  # kept only if every check below passes
        wrapped = serving_model(model, standardizer)
        spec = keras.InputSpec(shape=(None, N_FEATURES), dtype="float32", name=INPUT_NAME)
        wrapped.export(str(tmp), format="onnx", input_signature=[spec], verbose=False,
                       **({"opset_version": opset} if opset else {}))
        proto = onnx.load(str(tmp))
        graph = proto.graph
        initializers = {init.name for init in graph.initializer}
        inputs = [v for v in graph.input if v.name not in initializers]
        if len(inputs) == 1 and len(graph.output) == 1:
            _rename_value(graph, inputs[0].name, INPUT_NAME)
            _rename_value(graph, graph.output[0].name, OUTPUT_NAME)
        onnx.helper.set_model_props(proto, props)
        _check_graph(proto)
        onnx.save(proto, str(tmp))
        max_diff = _check_parity(tmp, wrapped, np.asarray(sample_x, dtype=np.float32))
    digest = write_sha256_record(out)
    return {"path": str(out), "sha256": digest, "max_abs_diff": max_diff, "backend": keras.backend.backend()}
