"""The tuning ladder: fold logic, early-stopping restore, calibration, the --quick ladder
end to end, and the determinism of the final build. Runs on the current KERAS_BACKEND."""

import csv
import hashlib
import json

import numpy as np
import pytest

from kerasnn.calibration import expected_calibration_error, reliability_bins
from kerasnn.data import load_phone_prices, synthetic_phone_prices
from kerasnn.tuning import CSV_COLUMNS, TrialConfig, TuningError, cv_folds, fold_parts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- folds


def test_cv_folds_partition_stratified_and_seeded():
    data = synthetic_phone_prices(400, seed=1)
    folds = cv_folds(data.y, 5, seed=3)
    assert len(folds) == 5
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(400))  # every row is tested exactly once
    for train_idx, test_idx in folds:
        assert not set(train_idx) & set(test_idx)
        assert np.bincount(data.y[test_idx]).tolist() == [20, 20, 20, 20]
    again = cv_folds(data.y, 5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = cv_folds(data.y, 5, seed=4)
    assert not np.array_equal(folds[0][1], other[0][1])


def test_cv_folds_rejects_bad_folds():
    y = synthetic_phone_prices(40, seed=0).y
    with pytest.raises(TuningError, match="folds"):
        cv_folds(y, 1)
    with pytest.raises(TuningError, match="smallest class"):
        cv_folds(y, 11)


def test_scaler_fitted_on_the_fold_training_rows_only():
    data = synthetic_phone_prices(400, seed=2)
    train_idx, test_idx = cv_folds(data.y, 5, seed=0)[0]
    config = TrialConfig(standardize=True, patience=5, val_fraction=0.2)
    parts = fold_parts(data.x, data.y, train_idx, test_idx, config, seed=0)
    fit_rows = parts.fit_rows
    # The validation part is carved from the training part; nothing from the test part.
    assert set(fit_rows) <= set(train_idx)
    assert not set(fit_rows) & set(test_idx)
    assert len(parts.y_val) == 64 and len(parts.y_fit) == 256
    assert np.bincount(parts.y_val).tolist() == [16, 16, 16, 16]
    # The scaler's statistics are those of the rows the network trains on.
    np.testing.assert_allclose(parts.standardizer.mean, data.x[fit_rows].astype(np.float64).mean(axis=0),
                               rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(parts.standardizer.scale, data.x[fit_rows].astype(np.float64).std(axis=0),
                               rtol=1e-9)
    np.testing.assert_allclose(parts.x_fit.mean(axis=0), 0.0, atol=1e-5)
    assert abs(parts.x_test.mean(axis=0)).max() > 1e-3  # test rows were not used to fit it
    # Without early stopping the whole training part is fitted on; raw features stay raw.
    parts = fold_parts(data.x, data.y, train_idx, test_idx, TrialConfig(standardize=True), seed=0)
    assert parts.x_val is None and len(parts.y_fit) == len(train_idx)
    np.testing.assert_allclose(parts.standardizer.mean, data.x[train_idx].astype(np.float64).mean(axis=0),
                               rtol=1e-12, atol=1e-9)
    raw = fold_parts(data.x, data.y, train_idx, test_idx, TrialConfig(standardize=False), seed=0)
    np.testing.assert_array_equal(raw.x_test, data.x[test_idx])


# ----------------------------------------------------------------------------- early stopping


def _cross_entropy(model, x, y):
    logits = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def test_early_stopping_restores_the_best_epoch_weights():
    from kerasnn.tuning import fit_model

    rng = np.random.default_rng(0)
    x_fit = rng.normal(size=(64, 20)).astype(np.float32)
    y_fit = rng.integers(0, 4, 64)
    x_val = rng.normal(size=(64, 20)).astype(np.float32)
    y_val = rng.integers(0, 4, 64)  # unrelated labels: the validation loss rises as the net memorises
    config = TrialConfig(standardize=True, hidden_units=(64,), optimizer="adam", lr=1e-2, batch_size=16,
                         epochs=60, patience=3)
    model, info = fit_model(config, x_fit, y_fit, x_val, y_val, seed=0)
    val_loss = info["history"]["val_loss"]
    assert info["epochs_run"] < 60, "expected the run to stop early"
    best = int(np.argmin(val_loss))
    assert info["best_epoch"] == best + 1
    assert info["epochs_run"] == best + 1 + 3
    # The model now holds the best epoch's weights, not the last epoch's.
    assert _cross_entropy(model, x_val, y_val) == pytest.approx(val_loss[best], rel=1e-4, abs=1e-5)
    assert val_loss[-1] > val_loss[best] + 1e-3


# ----------------------------------------------------------------------------- calibration


def test_ece_and_bins():
    y = np.array([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.65, 0.35]])
    bins = reliability_bins(proba, y, 10)
    assert sum(b["count"] for b in bins) == 4
    # Bins: (0.8,0.9] holds 0.9 (right) and 0.8 sits in (0.7,0.8] (right); (0.6,0.7] holds 0.65 (right),
    # (0.5,0.6] holds 0.6 (wrong).
    expected = (abs(1 - 0.9) + abs(1 - 0.8) + abs(1 - 0.65) + abs(0 - 0.6)) / 4
    assert expected_calibration_error(proba, y, 10) == pytest.approx(expected)
    assert expected_calibration_error(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2])) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="finite"):
        expected_calibration_error(np.full((2, 2), np.nan), np.array([0, 1]))


# ----------------------------------------------------------------------------- end to end


def _run_tune(argv):
    from kerasnn.cli import _Parser
    from kerasnn.tuning_cli import register

    parser = _Parser(prog="kerasnn")
    register(parser.add_subparsers(dest="command", required=True, parser_class=_Parser))
    args = parser.parse_args(["tune", *argv])
    return args.func(args)


def test_quick_ladder_end_to_end(real_data_path, tmp_path, backend):
    out = tmp_path / "ladder"
    assert _run_tune(["--quick", "--data", str(real_data_path), "--out", str(out), "--budget", "30"]) == 0
    table = (out / "ladder.md").read_text()
    rungs = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")][1:]
    for rung in ["0", "1", "2a", "2b", "2c", "2", "3", "4", "5a", "5", "6a", "6b", "6c", "6", "7", "8", "9a", "9b", "9",
                 "final",
                 "LR C=100", "LR C=1"]:
        assert rung in rungs, f"rung {rung} missing from the table"
    assert f"Backend **{backend}**" in table
    with open(out / "ladder.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_COLUMNS
        rows = list(reader)
    assert [r["rung"] for r in rows] == rungs
    for r in rows:
        assert 0.0 <= float(r["accuracy_mean"]) <= 1.0
        assert 0.0 <= float(r["accuracy_std"]) <= 0.5
        assert float(r["seconds"]) >= 0.0
    lr100 = next(r for r in rows if r["rung"] == "LR C=100")
    assert float(lr100["accuracy_mean"]) > 0.9  # the real data's linear baseline
    assert (out / "ladder.png").read_bytes()[:8] == PNG_MAGIC
    payload = json.loads((out / "ladder.json").read_text())
    assert payload["backend"] == backend and payload["optimizer_source"] == "kerasnn"
    assert set(payload["kept_rungs"]) <= {"1", "2", "3", "4", "5", "6", "7", "8", "9"}


def test_final_build_is_deterministic(tmp_path):
    import onnxruntime as ort

    from kerasnn.tuning import FINAL_CONFIG
    from kerasnn.tuning_cli import build_final

    data = synthetic_phone_prices(320, seed=5)
    outputs = []
    for run in ("a", "b"):
        model_out = tmp_path / run / "phone_price.onnx"
        summary = build_final(data, seed=7, folds=2, quick=True, model_out=model_out, log=lambda _: None)
        assert model_out.with_suffix(".md").is_file()
        assert (tmp_path / run / "phone_price_calibration.png").read_bytes()[:8] == PNG_MAGIC
        record = (tmp_path / run / "phone_price.onnx.sha256").read_text().split()[0]
        assert record == hashlib.sha256(model_out.read_bytes()).hexdigest() == summary["sha256"]
        assert summary["sha256"] in model_out.with_suffix(".md").read_text()
        assert 0.0 <= summary["ece"] <= 1.0
        session = ort.InferenceSession(str(model_out), providers=["CPUExecutionProvider"])
        (proba,) = session.run(["probabilities"], {"features": data.x[:100]})
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
        outputs.append(proba)
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=0, atol=1e-6)
    assert FINAL_CONFIG.standardize  # the shipped recipe standardizes inside the graph


def test_shipped_model_matches_its_record():
    """The committed ONNX file has the sha256 its record and card state (skips if absent)."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[1] / "models" / "phone_price.onnx"
    if not model.is_file():
        pytest.skip("models/phone_price.onnx not built yet")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert (model.parent / "phone_price.onnx.sha256").read_text().split()[0] == digest
    assert digest in (model.parent / "phone_price.md").read_text()


def test_real_data_quick_smoke_loader(real_data_path):
    data = load_phone_prices(real_data_path)
    assert len(data) == 1600 and np.bincount(data.y).tolist() == [400] * 4


def test_trial_heads_are_the_model_heads():
    from kerasnn.models import HEADS
    from kerasnn.tuning import HEADS as TRIAL_HEADS

    assert TRIAL_HEADS == HEADS
    with pytest.raises(TuningError, match="head must be one of"):
        TrialConfig(head="sigmoid")
