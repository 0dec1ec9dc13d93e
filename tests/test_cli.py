"""The command line: happy path end to end, and one-line errors with exit code 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerasnn.cli import main

KERASNN = [sys.executable, "-m", "kerasnn.cli"]


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kerasnn")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_train_evaluate_export_end_to_end_through_the_console_script(tmp_path, backend):
    env = {**os.environ, "KERAS_BACKEND": backend}
    run = tmp_path / "run"
    done = subprocess.run([*KERASNN, "train", "--synthetic", "200", "--epochs", "2", "--batch-size", "16",
                           "--verbose", "0", "--out", str(run)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "iterations: ceil(160 / 16) = 10 per epoch; x 2 epochs = 20 total" in done.stdout
    assert "SYNTHETIC" in done.stdout
    assert json.loads((run / "metrics.json").read_text())["synthetic"] is True

    done = subprocess.run([*KERASNN, "evaluate", str(run), "--synthetic", "64", "--json"],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_rows"] == 64

    model = tmp_path / "out" / "m.onnx"
    done = subprocess.run([*KERASNN, "export", str(run), "--out", str(model)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert model.is_file() and Path(str(model) + ".sha256").is_file()
    assert "max |diff|" in done.stdout


def test_data_errors_are_reported_before_any_backend_is_imported(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("battery_power,ram\n1,2\n")
    code = (
        "import sys\n"
        "from kerasnn.cli import main\n"
        f"rc = main(['train', '--data', {str(bad)!r}])\n"
        "assert rc == 2, rc\n"
        "assert not {'keras', 'torch', 'tensorflow', 'jax'} & set(sys.modules), sorted(sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "missing column 'blue'" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["train", "--optimizer", "lbfgs"], ["--optimizer", "'lbfgs'"]),
        (["train", "--epochs", "0"], ["--epochs", "positive integer"]),
        (["train", "--lr", "nan"], ["--lr"]),
        (["train", "--test-size", "1.5"], ["--test-size"]),
        (["train", "--synthetic", "50", "--data", "x.csv"], ["--data and --synthetic"]),
        (["train", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
        (["fly"], ["invalid choice: 'fly'"]),
        (["export"], ["give RUN_DIR"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, argv, fragments):
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_missing_and_malformed_data_name_the_file_and_line(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("KERASNN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train")
    assert_one_line_error(code, err, "data/phone_price.csv", "--synthetic")

    bad = tmp_path / "bad.csv"
    from kerasnn.schema import FEATURE_NAMES

    bad.write_text(",".join([*FEATURE_NAMES, "price_range"]) + "\n" + ",".join(["1"] * 20 + ["7"]) + "\n")
    code, _, err = run_cli(capsys, "train", "--data", str(bad))
    assert_one_line_error(code, err, str(bad), "line 2", "column 'battery_power'")


def test_unwritable_output_is_refused_and_nothing_is_half_written(capsys, tmp_path, backend):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "train", "--synthetic", "40", "--epochs", "1", "--verbose", "0",
                           "--out", str(blocker / "run"))
    assert_one_line_error(code, err, str(blocker))
    taken = tmp_path / "taken"
    taken.mkdir()
    code, _, err = run_cli(capsys, "train", "--synthetic", "40", "--out", str(taken))
    assert_one_line_error(code, err, "already exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken"]


def test_export_of_a_missing_run_dir_is_one_line(capsys, tmp_path, backend):
    code, _, err = run_cli(capsys, "export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.onnx"))
    assert_one_line_error(code, err, "not a run directory")
    assert not (tmp_path / "m.onnx").exists()
