"""Export a served model as a Triton Inference Server model repository.

:func:`export_triton` verifies the model exactly as the service does (sha256 record,
ONNX, schema metadata, signature) and writes::

    DIR/phone_price/config.pbtxt      # platform onnxruntime_onnx, dynamic batching
    DIR/phone_price/labels.txt        # class names, one a line (classification extension)
    DIR/phone_price/1/model.onnx      # the verified bytes

``max_batch_size > 0``, so ``dims`` leave out the batch dimension (``[20]``, ``[4]``).
Triton serves the directory as is (``tritonserver --model-repository DIR``), and so does
KServe's Triton runtime (an InferenceService with ``storageUri`` pointing at ``DIR``
and ``modelFormat: {name: triton}`` or ``onnx``). Each file is written to a temporary
name in its directory and renamed into place, so a reader never sees a partial file.
Unwritable destinations raise :class:`kerasnn.errors.OutputError` naming the path.
"""

from __future__ import annotations

import os
from pathlib import Path

from kerasnn.atomic import write_bytes_atomic
from kerasnn.errors import OutputError

from .modelfile import ModelSchema

__all__ = ["DEFAULT_MAX_BATCH_SIZE", "TRITON_PLATFORM", "export_triton", "model_config", "render_config_pbtxt"]

TRITON_PLATFORM = "onnxruntime_onnx"
DEFAULT_MAX_BATCH_SIZE = 10_000
LABELS_FILE = "labels.txt"


def model_config(schema: ModelSchema, name: str, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> dict:
    """Triton's ``ModelConfig`` as JSON-able data (the model-configuration extension's shape)."""
    return {
        "name": name,
        "platform": TRITON_PLATFORM,
        "max_batch_size": max_batch_size,
        "input": [{"name": schema.input_name, "data_type": "TYPE_FP32", "dims": [schema.n_features]}],
        "output": [{"name": schema.output_name, "data_type": "TYPE_FP32", "dims": [schema.n_classes],
                    "label_filename": LABELS_FILE}],
        "dynamic_batching": {"max_queue_delay_microseconds": 100},
        "instance_group": [{"kind": "KIND_CPU", "count": 1}],
    }


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config_pbtxt(schema: ModelSchema, name: str, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> str:
    """``config.pbtxt`` text (protobuf text format of ``inference.ModelConfig``)."""
    cfg = model_config(schema, name, max_batch_size=max_batch_size)
    inp, out = cfg["input"][0], cfg["output"][0]
    return "\n".join([
        "# Written by kerasnn.serve.triton.export_triton: Triton / KServe model configuration.",
        f"name: {_quote(name)}",
        f"platform: {_quote(TRITON_PLATFORM)}",
        f"max_batch_size: {max_batch_size}",
        "input [",
        "  {",
        f"    name: {_quote(inp['name'])}",
        f"    data_type: {inp['data_type']}",
        f"    dims: [ {inp['dims'][0]} ]",
        "  }",
        "]",
        "output [",
        "  {",
        f"    name: {_quote(out['name'])}",
        f"    data_type: {out['data_type']}",
        f"    dims: [ {out['dims'][0]} ]",
        f"    label_filename: {_quote(LABELS_FILE)}",
        "  }",
        "]",
        "dynamic_batching {",
        f"  max_queue_delay_microseconds: {cfg['dynamic_batching']['max_queue_delay_microseconds']}",
        "}",
        "instance_group [",
        "  {",
        "    kind: KIND_CPU",
        "    count: 1",
        "  }",
        "]",
        "",
    ])


def _atomic_write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None


def export_triton(model_path: str | os.PathLike, out_dir: str | os.PathLike, *, name: str | None = None,
                  max_batch_size: int = DEFAULT_MAX_BATCH_SIZE) -> Path:
    """Write a Triton model repository for ``model_path`` under ``out_dir``; return the model dir.

    Raises :class:`kerasnn.errors.ModelFileError` if the model does not verify and
    :class:`kerasnn.errors.OutputError` if ``out_dir`` cannot be written.
    """
    from kerasnn.schema import MODEL_NAME

    from .modelfile import read_verified
    from .predictor import Predictor

    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1 (dims leave out the batch), got {max_batch_size}")
    name = name or MODEL_NAME
    predictor = Predictor(model_path)  # full verification: sha256, ONNX, metadata, signature
    data = read_verified(model_path)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    model_dir = out / name
    schema = predictor.schema
    _atomic_write(model_dir / "1" / "model.onnx", data)
    _atomic_write(model_dir / LABELS_FILE, ("\n".join(schema.classes) + "\n").encode())
    _atomic_write(model_dir / "config.pbtxt",
                  render_config_pbtxt(schema, name, max_batch_size=max_batch_size).encode())
    return model_dir
