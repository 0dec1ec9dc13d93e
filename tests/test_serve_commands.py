"""``kerasnn serve`` / ``kerasnn ui`` entry points and the Triton repository export."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import onnx_fixtures as fx
import pytest
from google.protobuf import text_format
from kerasnn.serve import commands
from kerasnn.serve.triton import export_triton
from tritonclient.grpc import model_config_pb2

from kerasnn import schema
from kerasnn.errors import ModelFileError, OutputError

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kerasnn")
    commands.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_register_adds_serve_and_ui_with_documented_defaults(monkeypatch):
    monkeypatch.delenv("KERASNN_MODEL", raising=False)
    args = _parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers, args.threads, args.model) == ("127.0.0.1", 8000, 1, 1, None)
    assert args.func is commands.serve_command
    args = _parser().parse_args(["ui", "--model", "m.onnx", "--port", "9000", "--host", "0.0.0.0"])
    assert (args.host, args.port, str(args.model), args.func) == ("0.0.0.0", 9000, "m.onnx", commands.ui_command)
    assert str(commands.default_model_path()) == os.path.join("models", "phone_price.onnx")
    monkeypatch.setenv("KERASNN_MODEL", "/srv/m.onnx")
    assert str(commands.default_model_path()) == "/srv/m.onnx"
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--workers", "0"])


def _refusal_cases(tmp_path):
    cases = {name: write(tmp_path / f"{name}.onnx") for name, write in fx.BROKEN.items()}
    cases["missing"] = tmp_path / "absent.onnx"
    return cases


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_every_refusal_is_exit_2_and_one_line_naming_the_file(tmp_path, capsys, monkeypatch, command):
    def must_not_start(*a, **k):
        raise AssertionError("started although the model is invalid")

    monkeypatch.setattr(commands, "_run_uvicorn", must_not_start)
    for name, path in _refusal_cases(tmp_path).items():
        args = _parser().parse_args([command, "--model", str(path), "--port", "0"])
        assert args.func(args) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("kerasnn: error: ") and str(path) in err, (name, err)


def test_refusals_through_the_kerasnn_cli(tmp_path, capsys):
    cli = pytest.importorskip("kerasnn.cli")
    for name, path in _refusal_cases(tmp_path).items():
        assert cli.main(["serve", "--model", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err, (name, err)


def test_refusal_through_the_console_entry_point(tmp_path):
    path = fx.write_sha_mismatch(tmp_path / "m.onnx")
    out = subprocess.run([sys.executable, "-m", "kerasnn.cli", "serve", "--model", str(path)],
                         check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "sha256 mismatch" in out.stderr and str(path) in out.stderr
    assert out.stdout == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_with_two_workers_answers_and_aggregates_metrics(model_path, tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "kerasnn.cli", "serve", "--model", str(model_path),
                             "--port", str(port), "--workers", "2", "--no-ui"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(base + "/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.2)
        row = dict(zip(schema.FEATURE_NAMES, fx.EXAMPLE_ROWS[0], strict=True))
        with httpx.Client(base_url=base) as c:
            for _ in range(20):
                assert c.post("/predict", json=row).status_code == 200
            text = c.get("/metrics").text
        total = next(line for line in text.splitlines()
                     if line.startswith('kerasnn_rows_predicted_total{endpoint="predict"}'))
        assert float(total.split()[-1]) == 20.0  # both workers' counts, whichever answered the scrape
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0


# --- Triton model repository --------------------------------------------------------------------

def test_export_triton_writes_a_valid_repository(model_path, tmp_path):
    model_dir = export_triton(model_path, tmp_path / "repo")
    assert model_dir == tmp_path / "repo" / "phone_price"
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == "phone_price" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size > 0
    (inp,), (out,) = config.input, config.output
    assert (inp.name, list(inp.dims), inp.data_type) == ("features", [20], model_config_pb2.TYPE_FP32)
    assert (out.name, list(out.dims), out.data_type) == ("probabilities", [4], model_config_pb2.TYPE_FP32)
    assert config.HasField("dynamic_batching")
    assert out.label_filename == "labels.txt"
    assert (model_dir / "labels.txt").read_text().splitlines() == list(schema.CLASS_NAMES)
    assert (model_dir / "1" / "model.onnx").read_bytes() == model_path.read_bytes()
    leftovers = [p for p in (tmp_path / "repo").rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    export_triton(model_path, tmp_path / "repo", max_batch_size=64)  # re-export replaces in place
    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.max_batch_size == 64


def test_export_triton_refuses_bad_models_and_destinations(model_path, tmp_path):
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        export_triton(fx.write_sha_mismatch(tmp_path / "bad.onnx"), tmp_path / "repo")
    assert not (tmp_path / "repo").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=str(blocker)):
        export_triton(model_path, blocker)
