"""Small ONNX phone-price models for the serving tests, valid and broken.

:func:`write_model` builds, with ``onnx.helper``, a graph with the real model's contract:
one input ``features`` float32 ``[N, 20]`` (raw features), standardisation inside the
graph (``Sub``/``Div``), a fixed linear layer (``MatMul`` + ``Add``) and ``Softmax`` to
``probabilities`` float32 ``[N, 4]``; metadata from ``kerasnn.schema.model_metadata``;
and a ``sha256sum``-style record beside it. :func:`reference_probabilities` computes the
same function in NumPy so tests can compare exact numbers.

The fixed weights make the class follow RAM (like the real data set) with a smaller
pull from battery power and screen resolution, so the four classes all occur on
realistic rows.

Broken variants (each returns the path written): :func:`write_wrong_input_name`,
:func:`write_missing_output`, :func:`write_not_onnx`, :func:`write_sha_mismatch`,
:func:`write_no_sha_record`, :func:`write_no_metadata`, :func:`write_wrong_width`,
:func:`write_fixed_batch`, :func:`write_double_input`.

:func:`live_server` runs an ASGI app under a real uvicorn server on loopback for a test.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kerasnn import schema

OPSET = 17
IR_VERSION = 9  # onnxruntime >= 1.16 reads IR 9

#: Standardisation constants (mean, std) of the 20 features: roughly the real data's.
MEAN = np.array([1238, 0.5, 1.5, 0.5, 4.3, 0.5, 32, 0.5, 140, 4.5, 9.9, 645, 1251, 2124, 12.3, 5.8,
                 11, 0.76, 0.5, 0.5], dtype=np.float32)
STD = np.array([439, 0.5, 0.8, 0.5, 4.3, 0.5, 18, 0.29, 35, 2.3, 6.1, 444, 432, 1085, 4.2, 4.4,
                5.5, 0.43, 0.5, 0.5], dtype=np.float32)


def _weights() -> tuple[np.ndarray, np.ndarray]:
    w = np.zeros((schema.N_FEATURES, schema.N_CLASSES), dtype=np.float32)
    ram, battery, px_h, px_w = (schema.FEATURE_NAMES.index(n) for n in ("ram", "battery_power",
                                                                         "px_height", "px_width"))
    slope = np.array([-3.0, -1.0, 1.0, 3.0], dtype=np.float32)
    w[ram] = 3.0 * slope
    w[battery] = 0.5 * slope
    w[px_h] = 0.3 * slope
    w[px_w] = 0.3 * slope
    b = np.array([-2.0, 1.0, 1.0, -2.0], dtype=np.float32)
    return w, b


def reference_probabilities(x: np.ndarray) -> np.ndarray:
    """What the fixture model computes, in NumPy (float64 then float32)."""
    w, b = _weights()
    z = ((np.asarray(x, dtype=np.float64) - MEAN) / STD) @ w + b
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def build_model(*, input_name: str = schema.INPUT_NAME, output_name: str = schema.OUTPUT_NAME,
                n_features: int = schema.N_FEATURES, batch: int | str = "N",
                metadata: dict[str, str] | None = None, extra_input: bool = False,
                elem_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """The fixture graph as an ``onnx.ModelProto`` (see the module docstring)."""
    w, b = _weights()
    w = np.resize(w, (n_features, schema.N_CLASSES)).astype(np.float32)
    mean, std = np.resize(MEAN, n_features), np.resize(STD, n_features)
    np_type = np.float64 if elem_type == TensorProto.DOUBLE else np.float32
    inits = [numpy_helper.from_array(a.astype(np_type), n) for a, n in
             ((mean, "mean"), (std, "std"), (w, "W"), (b, "B"))]
    nodes = [
        helper.make_node("Sub", [input_name, "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "std"], ["scaled"]),
        helper.make_node("MatMul", ["scaled", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [output_name], axis=-1),
    ]
    inputs = [helper.make_tensor_value_info(input_name, elem_type, [batch, n_features])]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("scale", elem_type, [1]))
        nodes[1] = helper.make_node("Div", ["centred", "std"], ["scaled0"])
        nodes.insert(2, helper.make_node("Mul", ["scaled0", "scale"], ["scaled"]))
    outputs = [helper.make_tensor_value_info(output_name, elem_type, [batch, schema.N_CLASSES])]
    graph = helper.make_graph(nodes, "phone_price_fixture", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="kerasnn-tests")
    model.ir_version = IR_VERSION
    if metadata is None:
        metadata = fixture_metadata()
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model


def fixture_metadata(**override) -> dict[str, str]:
    """The metadata a real export carries, with ``backend="fixture"``."""
    extra = {"backend": "fixture", "keras_version": "0", "kerasnn_version": "0.1.0", "data_sha256": "0" * 64,
             "accuracy": 0.5, "accuracy_kind": "fixture", "synthetic": "true"}
    extra.update(override)
    return schema.model_metadata(**extra)


def write_sha256(path: Path, digest: str | None = None, name: str | None = None) -> Path:
    """Write ``<path>.sha256`` in ``sha256sum`` format (the true digest unless given)."""
    digest = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    record = path.with_name(path.name + ".sha256")
    record.write_text(f"{digest}  {name or path.name}\n")
    return record


def write_model(path: str | Path, **build_kwargs) -> Path:
    """Write a valid fixture model (or a variant per ``build_kwargs``) and its sha256 record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_model(**build_kwargs).SerializeToString())
    write_sha256(path)
    return path


def write_wrong_input_name(path: str | Path) -> Path:
    """Graph input named ``x`` while the metadata says ``features``."""
    return write_model(path, input_name="x")


def write_missing_output(path: str | Path) -> Path:
    """Graph output named ``logits_out``: no ``probabilities``."""
    return write_model(path, output_name="logits_out")


def write_wrong_width(path: str | Path) -> Path:
    """Input ``[N, 19]`` while the schema has 20 features."""
    return write_model(path, n_features=19)


def write_fixed_batch(path: str | Path) -> Path:
    """Input ``[1, 20]``: the batch is not dynamic."""
    return write_model(path, batch=1)


def write_double_input(path: str | Path) -> Path:
    """float64 input and output instead of float32."""
    return write_model(path, elem_type=TensorProto.DOUBLE)


def write_two_inputs(path: str | Path) -> Path:
    """A second graph input (what a tf2onnx Normalization export looks like)."""
    return write_model(path, extra_input=True)


def write_no_metadata(path: str | Path) -> Path:
    """A valid graph without the ``kerasnn.schema`` metadata."""
    return write_model(path, metadata={"backend": "fixture"})


def write_not_onnx(path: str | Path) -> Path:
    """Bytes that are not an ONNX model at all (with a correct sha256 record)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an ONNX model\n" * 10)
    write_sha256(path)
    return path


def write_pickle(path: str | Path) -> Path:
    """A pickle (with a correct sha256 record): must be refused, never unpickled."""
    import pickle

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    write_sha256(path)
    return path


def write_sha_mismatch(path: str | Path) -> Path:
    """A valid model whose sha256 record holds another digest."""
    path = write_model(path)
    write_sha256(path, digest="0" * 64)
    return path


def write_no_sha_record(path: str | Path) -> Path:
    """A valid model without its ``.sha256`` record."""
    path = write_model(path)
    path.with_name(path.name + ".sha256").unlink()
    return path


BROKEN = {
    "wrong_input_name": write_wrong_input_name,
    "missing_output": write_missing_output,
    "wrong_width": write_wrong_width,
    "fixed_batch": write_fixed_batch,
    "double_dtype": write_double_input,
    "two_inputs": write_two_inputs,
    "no_metadata": write_no_metadata,
    "not_onnx": write_not_onnx,
    "pickle": write_pickle,
    "sha_mismatch": write_sha_mismatch,
    "no_sha_record": write_no_sha_record,
}

#: Four real rows (the first four of the public training data), features only, and their
#: true price_range.
EXAMPLE_ROWS = [
    [842, 0, 2.2, 0, 1, 0, 7, 0.6, 188, 2, 2, 20, 756, 2549, 9, 7, 19, 0, 0, 1],
    [563, 1, 0.5, 1, 2, 1, 41, 0.9, 145, 5, 6, 1263, 1716, 2603, 11, 2, 9, 1, 1, 0],
    [615, 1, 2.5, 0, 0, 0, 10, 0.8, 131, 6, 9, 1216, 1786, 2769, 16, 8, 11, 1, 0, 0],
    [1821, 1, 1.2, 0, 13, 1, 44, 0.6, 141, 2, 14, 1208, 1212, 1411, 8, 2, 15, 1, 1, 0],
]
EXAMPLE_TARGETS = [1, 2, 2, 1]


@contextlib.contextmanager
def live_server(app, *, loop: str = "asyncio"):
    """Run ``app`` under a real uvicorn server on a free 127.0.0.1 port in a thread; yield its URL.

    The socket is bound before the thread starts (no port race); the server is stopped and
    the thread joined on exit.
    """
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, loop=loop, http="httptools", log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
