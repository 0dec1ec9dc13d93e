"""Training runs: learning, the run directory, determinism, re-evaluation, export."""

import csv
import json
import stat

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from kerasnn.atomic import default_mode
from kerasnn.data import load_phone_prices, synthetic_phone_prices
from kerasnn.errors import ModelFileError, OutputError
from kerasnn.export import ExportError, export_onnx, sha256_record_path
from kerasnn.schema import CLASS_NAMES, FEATURE_NAMES, INPUT_NAME, OUTPUT_NAME
from kerasnn.training import TrainConfig, evaluate_model, iterations, load_run, train

# Short, fast settings that still learn: the full tutorial recipe is 50 epochs at lr 1e-4.
QUICK = {"epochs": 12, "batch_size": 16, "lr": 1e-3, "verbose": 0}
PROVENANCE = {"accuracy": 0.5, "accuracy_kind": "test", "data_sha256": "0" * 64, "synthetic": "true"}


@pytest.fixture(scope="module")
def real_run(real_data_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "real"
    metrics = train(load_phone_prices(real_data_path), TrainConfig(**QUICK), out, log=lambda *_: None)
    return out, metrics


def test_iterations_follow_the_tutorial_relation():
    assert iterations(1280, 8, 50) == (160, 8000)
    assert iterations(1281, 8, 2) == (161, 322)  # a partial last batch is one more iteration


def test_short_run_on_real_data_learns_and_writes_a_whole_run_dir(real_run, backend):
    out, metrics = real_run
    assert metrics["accuracy"] > 0.8
    assert sorted(p.name for p in out.iterdir()) == [
        "history.csv", "metrics.json", "model.keras", "report.png", "standardizer.json"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["backend"] == backend and saved["seed"] == 0 and saved["synthetic"] is False
    assert saved["data_sha256"] == "17b2297f91ae75474fa7a4662294d83dfac252c3b7326c8e579512f60a962650"
    assert saved["n_train"] == 1280 and saved["n_test"] == 320
    assert saved["iterations_per_epoch"] == 80 and saved["total_iterations"] == 80 * QUICK["epochs"]
    assert set(saved["per_class"]) == set(CLASS_NAMES)
    cm = np.asarray(saved["confusion_matrix"])
    assert cm.shape == (4, 4) and cm.sum() == 320 and np.trace(cm) / 320 == pytest.approx(saved["accuracy"])
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == QUICK["epochs"]
    assert {"epoch", "loss", "accuracy", "test_loss", "test_accuracy"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Readable by others as if made with mkdir/open (temporary files and dirs start private).
    assert stat.S_IMODE(out.stat().st_mode) == default_mode(directory=True)
    for name in ("metrics.json", "standardizer.json", "report.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == default_mode(), name


def test_saved_run_re_evaluates_to_the_same_accuracy(real_run, real_data_path):
    from kerasnn.data import stratified_split

    out, metrics = real_run
    model, standardizer, _saved = load_run(out)
    data = load_phone_prices(real_data_path)
    _, x_test, _, y_test = stratified_split(data.x, data.y, 0.2, seed=0)
    assert evaluate_model(model, standardizer, x_test, y_test)["accuracy"] == pytest.approx(metrics["accuracy"])


def test_same_seed_same_backend_gives_the_same_metrics(tmp_path):
    data = synthetic_phone_prices(240, seed=0)
    config = TrainConfig(epochs=3, batch_size=16, lr=1e-3, verbose=0)
    a = train(data, config, tmp_path / "a", log=lambda *_: None)
    b = train(data, config, tmp_path / "b", log=lambda *_: None)
    for key in ("accuracy", "confusion_matrix", "per_class"):
        assert a[key] == b[key]
    ha = (tmp_path / "a" / "history.csv").read_text()
    assert ha == (tmp_path / "b" / "history.csv").read_text()


def test_synthetic_runs_say_so(tmp_path):
    lines = []
    metrics = train(synthetic_phone_prices(64, seed=0), TrainConfig(epochs=1, verbose=0), tmp_path / "s",
                    log=lines.append)
    assert metrics["synthetic"] is True and metrics["data_sha256"] is None
    assert any("SYNTHETIC" in line for line in lines)


def test_existing_or_unwritable_out_leaves_nothing_behind(tmp_path):
    data = synthetic_phone_prices(64, seed=0)
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="already exists"):
        train(data, TrainConfig(epochs=1, verbose=0), tmp_path / "taken")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        train(data, TrainConfig(epochs=1, verbose=0), blocker / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken"]


def test_failed_training_removes_its_temporary_dir(tmp_path, monkeypatch):
    from kerasnn import training

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "_write_run", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        train(synthetic_phone_prices(64, seed=0), TrainConfig(epochs=1, verbose=0), tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def test_load_run_refuses_incomplete_dirs(tmp_path):
    with pytest.raises(ModelFileError, match="not a run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "standardizer.json").write_text("{}")
    with pytest.raises(ModelFileError, match="model.keras: missing"):
        load_run(tmp_path)


# --- export ----------------------------------------------------------------------------------------

def test_export_takes_raw_features_and_matches_keras(real_run, tmp_path, backend):
    out, metrics = real_run
    model, standardizer, _ = load_run(out)
    rows = synthetic_phone_prices(50, seed=4).x
    summary = export_onnx(model, standardizer, tmp_path / "m.onnx", sample_x=rows,
                          metadata={"accuracy": metrics["accuracy"], "accuracy_kind": "test split",
                                    "data_sha256": metrics["data_sha256"], "synthetic": "false"})
    assert summary["max_abs_diff"] <= 1e-5 and summary["backend"] == backend

    proto = onnx.load(tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["feature_names"]) == list(FEATURE_NAMES)
    assert json.loads(props["class_names"]) == list(CLASS_NAMES)
    assert json.loads(props["kerasnn.schema"])["features"][13]["name"] == "ram"
    assert props["backend"] == backend and json.loads(props["accuracy"]) == metrics["accuracy"]

    record = sha256_record_path(tmp_path / "m.onnx").read_text()
    assert record == f"{summary['sha256']}  m.onnx\n"

    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    for batch in (1, 3, 1000):
        raw = synthetic_phone_prices(max(batch, 8), seed=batch).x[:batch]
        (probs,) = session.run(None, {INPUT_NAME: raw})
        assert probs.shape == (batch, 4)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        logits = np.asarray(model.predict(standardizer.transform(raw), verbose=0))
        np.testing.assert_array_equal(probs.argmax(axis=1), logits.argmax(axis=1))


def test_export_refuses_a_model_without_its_provenance(real_run, tmp_path):
    model, standardizer, _ = load_run(real_run[0])
    rows = synthetic_phone_prices(10, seed=0).x
    with pytest.raises(ExportError, match="lacks accuracy, accuracy_kind"):
        export_onnx(model, standardizer, tmp_path / "m.onnx", sample_x=rows,
                    metadata={"data_sha256": "0" * 64, "synthetic": "false"})
    with pytest.raises(ExportError, match=r"accuracy must be a number in \[0, 1\], got '97.5'"):
        export_onnx(model, standardizer, tmp_path / "m.onnx", sample_x=rows, metadata={**PROVENANCE, "accuracy": 97.5})
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_to_keep_a_model_that_differs_from_keras(real_run, tmp_path, monkeypatch):
    from kerasnn import export

    model, standardizer, _ = load_run(real_run[0])
    real_serving_model = export.serving_model

    def skewed_serving_model(*args):
        wrapped = real_serving_model(*args)
        predict = wrapped.predict
        wrapped.predict = lambda *a, **k: np.asarray(predict(*a, **k)) + 1e-3  # Keras "disagrees" with ONNX
        return wrapped

    monkeypatch.setattr(export, "serving_model", skewed_serving_model)
    with pytest.raises(ExportError, match=r"differs from Keras predict by 0\.001 at batch 1 .*not kept"):
        export_onnx(model, standardizer, tmp_path / "m.onnx", sample_x=synthetic_phone_prices(10, seed=0).x,
                    metadata=PROVENANCE)
    assert list(tmp_path.iterdir()) == []
