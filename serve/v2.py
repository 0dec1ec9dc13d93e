"""Open Inference Protocol (KServe v2) request decoding and response encoding.

Pure functions, no HTTP framework: :func:`decode_infer` turns a request body (JSON, or
JSON header + binary tensors when ``Inference-Header-Content-Length`` is given: the
binary tensor data extension that ``tritonclient`` uses by default) into an
:class:`InferCall`; :func:`encode_infer` renders the response. Every client mistake
raises :class:`V2Error` with a one-line message naming the tensor and what is wrong.

Inputs: exactly one, the model's input (``features``), datatype ``FP32``, shape
``[N, F]`` with ``1 <= N <= max_rows``, data flat or nested row-major JSON numbers, or
``parameters.binary_data_size`` little-endian float32 bytes. Outputs: ``probabilities``
FP32 ``[N, C]`` and ``label`` INT64 ``[N]`` (the class index); all of them unless
``outputs`` names some; each in binary when its ``parameters.binary_data`` is true, or,
for outputs not listed, when the request's ``parameters.binary_data_output`` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import orjson

__all__ = ["OUTPUT_LABEL", "InferCall", "V2Error", "decode_infer", "encode_infer"]

OUTPUT_LABEL = "label"
_NUMBER_TYPES = frozenset((int, float))


class V2Error(ValueError):
    """A malformed or invalid inference request; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class InferCall:
    """A decoded request: id (or None), input matrix, and [(output name, binary?)]."""

    id: str | None
    x: np.ndarray
    outputs: list[tuple[str, bool]]


_TYPE_NAMES = {bool: "boolean", str: "string", list: "list", dict: "object", type(None): "null"}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _flag(params: dict, key: str, where: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise V2Error(f"{where}: parameter {key!r} must be true or false, got {_type_name(value)}")
    return value


def _params(obj: dict, where: str) -> dict:
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise V2Error(f"{where}: 'parameters' must be an object, got {_type_name(params)}")
    return params


def decode_infer(body: bytes, header_length: int | None, *, input_name: str, n_features: int,
                 output_names: tuple[str, ...], max_rows: int) -> InferCall:
    """Decode an infer request body (see the module docstring)."""
    if header_length is not None:
        if not 0 < header_length <= len(body):
            raise V2Error(f"Inference-Header-Content-Length {header_length} is outside the {len(body)} byte body")
        head, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        head, binary = body, memoryview(b"")
    try:
        req = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise V2Error(f"malformed JSON: {exc}") from None
    if not isinstance(req, dict):
        raise V2Error(f"request must be a JSON object, got {_type_name(req)}")
    req_id = req.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise V2Error(f"'id' must be a string, got {_type_name(req_id)}")
    params = _params(req, "request")
    binary_default = _flag(params, "binary_data_output", "request")

    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise V2Error(f"'inputs' must be a non-empty list with the input {input_name!r}")
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise V2Error(f"each entry of 'inputs' must be an object, got {_type_name(tensor)}")
        name = tensor.get("name")
        if name != input_name:
            raise V2Error(f"unknown input {name!r}: the model has one input, {input_name!r}")
    if len(inputs) != 1:
        raise V2Error(f"input {input_name!r} given {len(inputs)} times")
    x, used = _decode_input(inputs[0], binary, input_name, n_features, max_rows)
    if used != len(binary):
        raise V2Error(f"{len(binary) - used} bytes of binary data after the tensors the header describes")

    outputs = _decode_outputs(req.get("outputs"), output_names, binary_default)
    return InferCall(req_id, x, outputs)


def _decode_input(tensor: dict, binary: memoryview, name: str, n_features: int,
                  max_rows: int) -> tuple[np.ndarray, int]:
    where = f"input {name!r}"
    datatype = tensor.get("datatype")
    if datatype != "FP32":
        raise V2Error(f"{where}: datatype must be 'FP32', got {datatype!r}")
    shape = tensor.get("shape")
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(type(d) is int for d in shape) or shape[1] != n_features):
        raise V2Error(f"{where}: shape must be [N, {n_features}], got {shape!r}")
    rows = shape[0]
    if rows < 1:
        raise V2Error(f"{where}: shape {shape}: N must be at least 1")
    if rows > max_rows:
        raise V2Error(f"{where}: shape {shape}: at most {max_rows} rows per request", status=413)
    count = rows * n_features
    params = _params(tensor, where)
    size = params.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size != count * 4:
            raise V2Error(f"{where}: binary_data_size must be {count * 4} bytes for shape {shape} FP32, got {size!r}")
        if "data" in tensor:
            raise V2Error(f"{where}: give either 'data' or binary_data_size, not both")
        if len(binary) < size:
            raise V2Error(f"{where}: binary_data_size is {size} but only {len(binary)} bytes follow the header")
        x = np.frombuffer(binary[:size], dtype="<f4").astype(np.float32, copy=True).reshape(rows, n_features)
        return x, size
    data = tensor.get("data")
    if not isinstance(data, list):
        raise V2Error(f"{where}: 'data' must be a list of numbers, got {_type_name(data)}")
    if data and type(data[0]) is list:
        if len(data) != rows or not all(type(r) is list and len(r) == n_features for r in data):
            raise V2Error(f"{where}: nested 'data' must be {rows} lists of {n_features} numbers (shape {shape})")
        flat = chain.from_iterable(data)
        types = set(map(type, flat))
    else:
        if len(data) != count:
            raise V2Error(f"{where}: 'data' holds {len(data)} values, shape {shape} needs {count}")
        types = set(map(type, data))
    if not types <= _NUMBER_TYPES:
        bad = sorted({_TYPE_NAMES.get(t, t.__name__) for t in types - _NUMBER_TYPES})
        raise V2Error(f"{where}: 'data' must hold only numbers, found {', '.join(bad)}")
    try:
        with np.errstate(over="ignore"):
            x = np.array(data, dtype=np.float32).reshape(rows, n_features)
    except (ValueError, OverflowError) as exc:
        raise V2Error(f"{where}: 'data' is not a {rows}x{n_features} array of numbers: {exc}") from None
    return x, 0


def _decode_outputs(outputs: object, names: tuple[str, ...], binary_default: bool) -> list[tuple[str, bool]]:
    if outputs is None:
        return [(n, binary_default) for n in names]
    if not isinstance(outputs, list) or not outputs:
        raise V2Error(f"'outputs' must be a non-empty list of {{\"name\": ...}} (outputs: {', '.join(names)})")
    chosen: list[tuple[str, bool]] = []
    for out in outputs:
        if not isinstance(out, dict):
            raise V2Error(f"each entry of 'outputs' must be an object, got {_type_name(out)}")
        name = out.get("name")
        if name not in names:
            raise V2Error(f"unknown output {name!r}: the model's outputs are {', '.join(names)}")
        if any(name == n for n, _ in chosen):
            raise V2Error(f"output {name!r} requested twice")
        params = _params(out, f"output {name!r}")
        if params.get("classification"):
            raise V2Error(f"output {name!r}: the classification extension is not supported; "
                          f"request {OUTPUT_LABEL!r} for the class index")
        binary = _flag(params, "binary_data", f"output {name!r}") if "binary_data" in params else binary_default
        chosen.append((name, binary))
    return chosen


def encode_infer(call: InferCall, tensors: dict[str, np.ndarray], *, model_name: str,
                 model_version: str) -> tuple[bytes, int | None]:
    """Response body and, when any output is binary, the JSON header length."""
    outs = []
    blobs = []
    for name, binary in call.outputs:
        arr = tensors[name]
        datatype = "INT64" if arr.dtype == np.int64 else "FP32"
        entry = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if binary:
            blob = np.ascontiguousarray(arr, dtype="<i8" if datatype == "INT64" else "<f4").tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            entry["data"] = arr.ravel()
        outs.append(entry)
    resp = {"model_name": model_name, "model_version": model_version}
    if call.id is not None:
        resp["id"] = call.id
    resp["outputs"] = outs
    head = orjson.dumps(resp, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return b"".join([head, *blobs]), len(head)
