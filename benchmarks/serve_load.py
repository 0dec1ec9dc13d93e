"""Load benchmark of the ONNX service against a naive Keras ``model.predict`` server.

Usage (from the repository root)::

    .venv/bin/python benchmarks/serve_load.py [--model models/phone_price.onnx] [--keras-model M.keras]
                                              [--seconds 4] [--skip-naive]

What it does, all on 127.0.0.1:

1. starts the service (``uvicorn kerasnn.serve.api:app_from_env --factory``, uvloop + httptools,
   one worker, no UI, no access log) in a subprocess. Without ``--model`` (or if the file is
   absent) it writes an ONNX MLP 20-128-256-4 + softmax with random weights and the real schema
   metadata into a temporary directory, so both servers run the same network size;
2. starts the naive server in another subprocess: this file with ``--naive-server``, a small
   FastAPI app with pydantic request/response models that calls ``model.predict`` per request on
   a Keras 20-128-256-4 model (``--keras-model`` or built here);
3. drives both from this process with a minimal keep-alive HTTP/1.1 client on uvloop (one
   connection per concurrent worker), bounded by request counts and ``--seconds`` per phase:
   p50/p99 latency at concurrency 1 (single-row v2 infer and /predict), requests/s at
   concurrency 32 (single-row /predict and v2 infer), rows/s with 10,000-row requests (/predict
   JSON objects, v2 JSON, v2 binary), and prints the figures and the ONNX/naive ratios.

The client shares the machine's cores with the server: figures are a lower bound of what a
remote client would see, and noisy on a busy machine. Nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HIDDEN = (128, 256)


# --- models ---------------------------------------------------------------------------------------

def write_onnx_mlp(path: Path, seed: int = 0) -> Path:
    """An ONNX MLP 20-128-256-4 + softmax with the real schema metadata and its sha256 record."""
    from onnx import TensorProto, helper, numpy_helper

    from kerasnn import schema

    rng = np.random.default_rng(seed)
    sizes = (schema.N_FEATURES, *HIDDEN, schema.N_CLASSES)
    inits, nodes, prev = [], [], schema.INPUT_NAME
    mean = np.array([f.observed_min + f.observed_max for f in schema.FEATURES], np.float32) / 2
    scale = np.array([max(f.observed_max - f.observed_min, 1) for f in schema.FEATURES], np.float32) / 4
    inits += [numpy_helper.from_array(mean, "mean"), numpy_helper.from_array(scale, "scale")]
    nodes += [helper.make_node("Sub", [prev, "mean"], ["c"]), helper.make_node("Div", ["c", "scale"], ["h0"])]
    prev = "h0"
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(np.zeros(b, np.float32), f"b{i}")]
        nodes += [helper.make_node("MatMul", [prev, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"z{i}"])]
        prev = f"z{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    nodes.append(helper.make_node("Softmax", [prev], [schema.OUTPUT_NAME], axis=-1))
    graph = helper.make_graph(
        nodes, "bench_mlp",
        [helper.make_tensor_value_info(schema.INPUT_NAME, TensorProto.FLOAT, ["N", schema.N_FEATURES])],
        [helper.make_tensor_value_info(schema.OUTPUT_NAME, TensorProto.FLOAT, ["N", schema.N_CLASSES])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, schema.model_metadata(backend="benchmark", synthetic="true"))
    path.write_bytes(model.SerializeToString())
    path.with_name(path.name + ".sha256").write_text(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return path


def load_or_build_keras(path: str | None):
    import keras

    if path:
        return keras.saving.load_model(path)
    model = keras.Sequential([keras.Input((20,)), *(keras.layers.Dense(u, activation="relu") for u in HIDDEN),
                              keras.layers.Dense(4, activation="softmax")])
    model.predict(np.zeros((1, 20), np.float32), verbose=0)
    return model


# --- the naive server (runs in its own process) ------------------------------------------------------

def naive_server(port: int, keras_path: str | None) -> None:
    """FastAPI + pydantic + ``model.predict`` per request: what a first version usually looks like."""
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    from kerasnn import schema

    model = load_or_build_keras(keras_path)
    fields = {f.name: (float, ...) for f in schema.FEATURES}
    from pydantic import create_model

    Row = create_model("Row", **fields)

    class Tensor(BaseModel):
        name: str
        shape: list[int]
        datatype: str
        data: list

    class InferRequest(BaseModel):
        id: str | None = None
        inputs: list[Tensor]

    class Prediction(BaseModel):
        price_range: int
        label: str
        probabilities: dict[str, float]

    app = FastAPI()

    @app.post("/predict")
    def predict(rows: Row | list[Row]) -> Prediction | list[Prediction]:
        many = isinstance(rows, list)
        batch = rows if many else [rows]
        x = np.array([[getattr(r, n) for n in schema.FEATURE_NAMES] for r in batch], np.float32)
        probs = model.predict(x, verbose=0)
        out = [Prediction(price_range=int(p.argmax()), label=schema.CLASS_NAMES[int(p.argmax())],
                          probabilities=dict(zip(schema.CLASS_NAMES, map(float, p), strict=True))) for p in probs]
        return out if many else out[0]

    @app.post("/v2/models/phone_price/infer")
    def infer(req: InferRequest) -> dict:
        t = req.inputs[0]
        x = np.array(t.data, np.float32).reshape(t.shape)
        probs = model.predict(x, verbose=0)
        return {"model_name": "phone_price", "id": req.id, "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": list(probs.shape), "data": probs.ravel().tolist()},
            {"name": "label", "datatype": "INT64", "shape": [len(probs)], "data": probs.argmax(1).tolist()}]}

    @app.get("/v2/health/ready")
    def ready() -> dict:
        return {"ready": True}

    # This module postpones annotations; FastAPI cannot resolve local classes from strings.
    predict.__annotations__ = {"rows": Row | list[Row], "return": Prediction | list[Prediction]}
    infer.__annotations__ = {"req": InferRequest, "return": dict}
    app.router.routes.clear()
    app.post("/predict")(predict)
    app.post("/v2/models/phone_price/infer")(infer)
    app.get("/v2/health/ready")(ready)

    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", access_log=False,
                log_level="warning")


# --- a small fast HTTP/1.1 client -------------------------------------------------------------------

class Conn:
    """One keep-alive connection; ``request`` returns (status, body)."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length)
        return status, body

    def close(self):
        self.writer.close()


def post(path: str, body: bytes, ctype: str = "application/json", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def run_phase(port: int, raw: bytes, *, concurrency: int, max_requests: int, seconds: float):
    """Send ``raw`` repeatedly; latencies (s), elapsed (s), errors."""
    conns = [await Conn.open(port) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    sent = 0

    async def worker(conn: Conn):
        nonlocal sent, errors
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            status, _ = await conn.request(raw)
            latencies.append(time.perf_counter() - t0)
            errors += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return latencies, elapsed, errors


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the benchmark ----------------------------------------------------------------------------------

def requests_for() -> dict[str, bytes]:
    from kerasnn import schema

    row = [842, 0, 2.2, 0, 1, 0, 7, 0.6, 188, 2, 2, 20, 756, 2549, 9, 7, 19, 0, 0, 1]
    named = dict(zip(schema.FEATURE_NAMES, row, strict=True))
    rng = np.random.default_rng(1)
    lo = np.array([f.observed_min for f in schema.FEATURES])
    hi = np.array([f.observed_max for f in schema.FEATURES])
    bulk = rng.uniform(lo, hi, (10_000, 20))
    whole = np.array([f.kind != "float" for f in schema.FEATURES])
    bulk = np.where(whole, np.round(bulk), np.round(bulk, 1))
    bulk_rows = [{n: (int(v) if w else v) for n, v, w in zip(schema.FEATURE_NAMES, r, whole, strict=True)}
                 for r in bulk.tolist()]
    infer_path = "/v2/models/phone_price/infer"

    def v2(data, n):
        return json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [n, 20],
                                       "data": data}]}).encode()

    header = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [10_000, 20],
                                     "parameters": {"binary_data_size": 10_000 * 80}}],
                         "parameters": {"binary_data_output": True}}).encode()
    return {
        "predict_1": post("/predict", json.dumps(named).encode()),
        "v2_1": post(infer_path, v2(row, 1)),
        "predict_10k": post("/predict", json.dumps(bulk_rows).encode()),
        "v2_10k": post(infer_path, v2(bulk.ravel().tolist(), 10_000)),
        "v2_10k_binary": post(infer_path, header + bulk.astype("<f4").tobytes(), "application/octet-stream",
                              f"Inference-Header-Content-Length: {len(header)}\r\n"),
    }


def measure(port: int, reqs: dict[str, bytes], seconds: float, scale: float,
            binary: bool = True) -> dict[str, float]:
    """All figures for one server. ``scale`` < 1 shrinks request counts for the slow server."""
    out: dict[str, float] = {}

    def phase(raw, conc, n):
        lat, elapsed, errors = asyncio.run(run_phase(port, raw, concurrency=conc, max_requests=max(int(n * scale), 5),
                                                     seconds=seconds))
        if errors:
            print(f"  ! {errors} non-200 answers", file=sys.stderr)
        return lat, elapsed

    for name in ("v2_1", "predict_1"):
        phase(reqs[name], 1, 200)  # warm-up
        lat, _ = phase(reqs[name], 1, 3000)
        q = statistics.quantiles(lat, n=100)
        out[f"{name} p50 ms (c=1)"] = q[49] * 1e3
        out[f"{name} p99 ms (c=1)"] = q[98] * 1e3
    for name in ("predict_1", "v2_1"):
        lat, elapsed = phase(reqs[name], 32, 30000)
        out[f"{name} req/s (c=32)"] = len(lat) / elapsed
    for name in ("predict_10k", "v2_10k", "v2_10k_binary")[: 3 if binary else 2]:
        phase(reqs[name], 1, 2)  # warm-up
        lat, elapsed = phase(reqs[name], 1, 60)
        out[f"{name} rows/s (c=1)"] = 10_000 * len(lat) / elapsed
    return out


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="models/phone_price.onnx", help="ONNX model (with .sha256 beside it)")
    parser.add_argument("--keras-model", default=None, help=".keras file for the naive server (default: built)")
    parser.add_argument("--seconds", type=float, default=4.0, help="time bound per phase")
    parser.add_argument("--skip-naive", action="store_true", help="only measure the ONNX service")
    parser.add_argument("--naive-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_server is not None:
        naive_server(args.naive_server, args.keras_model)
        return 0

    tmp = tempfile.TemporaryDirectory(prefix="kerasnn-bench-")
    model = Path(args.model)
    if not model.is_file():
        model = write_onnx_mlp(Path(tmp.name) / "phone_price.onnx")
        print(f"{args.model} not found: using a random-weight ONNX MLP 20-128-256-4 ({model})")
    reqs = requests_for()
    results: dict[str, dict[str, float]] = {}

    port = free_port()
    env = {**os.environ, "KERASNN_SERVE_MODEL_PATH": str(model.resolve()), "KERASNN_SERVE_UI": "0"}
    proc = start([sys.executable, "-m", "uvicorn", "kerasnn.serve.api:app_from_env", "--factory",
                  "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
                  "--no-access-log", "--log-level", "warning"], env)
    try:
        wait_ready(port, proc)
        print("measuring the ONNX service ...", flush=True)
        results["onnx"] = measure(port, reqs, args.seconds, 1.0)
    finally:
        stop(proc)

    if not args.skip_naive:
        port = free_port()
        cmd = [sys.executable, __file__, "--naive-server", str(port)]
        if args.keras_model:
            cmd += ["--keras-model", args.keras_model]
        proc = start(cmd, {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        try:
            wait_ready(port, proc)
            print("measuring the naive Keras server ...", flush=True)
            results["naive"] = measure(port, reqs, args.seconds, 0.1, binary=False)
        finally:
            stop(proc)

    onnx = results["onnx"]
    naive = results.get("naive", {})
    print(f"\n{'figure':34} {'onnx service':>14} {'naive keras':>14} {'ratio':>9}")
    for key, value in onnx.items():
        other = naive.get(key)
        if other is None:
            print(f"{key:34} {value:14,.3f}")
            continue
        better = other / value if "ms" in key else value / other
        print(f"{key:34} {value:14,.3f} {other:14,.3f} {better:8.1f}x")
    print("\nratio: how many times better the ONNX service is (lower latency, higher throughput)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
