"""The predictor: model verification, schema from metadata, strict value checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import onnx_fixtures as fx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kerasnn.serve.modelfile import ModelSchema, read_verified
from kerasnn.serve.predictor import Predictor
from kerasnn.serve.rows import RowParser
from kerasnn.serve.validation import InputValidationError

from kerasnn import schema
from kerasnn.errors import KerasnnError, ModelFileError

pytestmark = pytest.mark.serving


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx")


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor(model_path)


def test_predictions_match_the_graph_computed_in_numpy(predictor):
    x = np.array(fx.EXAMPLE_ROWS, dtype=np.float32)
    pred = predictor.predict(x)
    np.testing.assert_allclose(pred.probabilities, fx.reference_probabilities(x), atol=2e-6)
    assert pred.probabilities.dtype == np.float32 and pred.probabilities.shape == (4, 4)
    assert pred.labels.dtype == np.int64
    assert pred.labels.tolist() == fx.reference_probabilities(x).argmax(1).tolist()


def test_schema_comes_from_the_metadata(predictor):
    s = predictor.schema
    assert s.feature_names == schema.FEATURE_NAMES
    assert s.classes == schema.CLASS_NAMES
    assert (s.input_name, s.output_name, s.target) == ("features", "probabilities", "price_range")
    ram = s.features[s.feature_names.index("ram")]
    assert (ram.kind, ram.unit, ram.valid_min, ram.valid_max) == ("int", "MB", 64, 32768)
    assert s.metadata["backend"] == "fixture"
    assert predictor.info()["sha256"] == read_verified.__globals__["hashlib"].sha256(
        predictor.path.read_bytes()).hexdigest()


def test_metadata_with_other_ranges_is_what_gets_enforced(tmp_path):
    """A served model carries its own schema: narrower ranges in the metadata are enforced."""
    doc = schema.schema_dict()
    for f in doc["features"]:
        if f["name"] == "ram":
            f["valid_max"] = f["observed_max"] = 3000
    meta = fx.fixture_metadata()
    meta["kerasnn.schema"] = json.dumps(doc)
    pred = Predictor(fx.write_model(tmp_path / "narrow.onnx", metadata=meta))
    x = np.array(fx.EXAMPLE_ROWS[:1], dtype=np.float32)
    x[0, schema.FEATURE_NAMES.index("ram")] = 3500
    with pytest.raises(InputValidationError, match=r"ram: out of the valid range \[64, 3000\] MB: got 3500"):
        pred.predict(x)


@pytest.mark.parametrize("variant", sorted(fx.BROKEN))
def test_broken_models_are_refused_with_one_line_naming_the_file(tmp_path, variant):
    path = fx.BROKEN[variant](tmp_path / f"{variant}.onnx")
    with pytest.raises(ModelFileError) as info:
        Predictor(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert isinstance(info.value, KerasnnError)


def test_refusal_messages_say_what_is_wrong(tmp_path):
    cases = {
        "wrong_input_name": "input is named 'x'",
        "missing_output": "no output 'probabilities'",
        "wrong_width": "expected [N, 20]",
        "fixed_batch": "dynamic batch",
        "double_dtype": "tensor(double)",
        "two_inputs": "exactly one input",
        "no_metadata": "no 'kerasnn.schema' metadata",
        "not_onnx": "not a valid ONNX model",
        "pickle": "not a valid ONNX model",
        "sha_mismatch": "sha256 mismatch",
        "no_sha_record": "no sha256 record",
    }
    assert set(cases) == set(fx.BROKEN)
    for variant, expected in cases.items():
        with pytest.raises(ModelFileError, match=re.escape(expected)):
            Predictor(fx.BROKEN[variant](tmp_path / f"{variant}.onnx"))


def test_missing_file_and_bad_records_are_refused(tmp_path, model_path):
    with pytest.raises(ModelFileError, match="model file not found"):
        Predictor(tmp_path / "absent.onnx")
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(model_path.read_bytes())
    fx.write_sha256(copy, name="phone_price.onnx")  # right digest, names another file
    with pytest.raises(ModelFileError, match="records a different file"):
        Predictor(copy)
    copy.with_name("copy.onnx.sha256").write_text("not a record\n")
    with pytest.raises(ModelFileError, match="is not one"):
        Predictor(copy)
    fx.write_sha256(copy)
    assert Predictor(copy).schema.n_features == 20
    copy.write_bytes(model_path.read_bytes() + b"\0")  # changed after the record was written
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        Predictor(copy)


def test_malformed_schema_metadata_is_refused(tmp_path):
    for bad in ("{not json", json.dumps({"features": []}), json.dumps({**schema.schema_dict(), "classes": ["a"]})):
        meta = fx.fixture_metadata()
        meta["kerasnn.schema"] = bad
        with pytest.raises(ModelFileError, match="kerasnn.schema"):
            ModelSchema.from_metadata(meta, "m.onnx")
    meta = fx.fixture_metadata()
    meta["class_names"] = json.dumps(["a", "b", "c", "d"])
    with pytest.raises(ModelFileError, match="'class_names' disagrees"):
        ModelSchema.from_metadata(meta, "m.onnx")


def test_value_checks_name_row_field_and_reason(predictor):
    x = np.array(fx.EXAMPLE_ROWS * 2, dtype=np.float32)
    names = schema.FEATURE_NAMES
    x[1, names.index("blue")] = 0.5
    x[2, names.index("ram")] = 10
    x[3, names.index("fc")] = 2.5
    x[5, names.index("clock_speed")] = np.nan
    x[6, names.index("battery_power")] = np.inf
    with pytest.raises(InputValidationError) as info:
        predictor.predict(x)
    got = [(p.row, p.field, p.message) for p in info.value.problems]
    assert got == [
        (1, "blue", "must be 0 or 1: got 0.5"),
        (2, "ram", "out of the valid range [64, 32768] MB: got 10"),
        (3, "fc", "must be a whole number: got 2.5"),
        (5, "clock_speed", "not a number: got NaN"),
        (6, "battery_power", "out of the valid range [100, 10000] mAh: got Infinity"),
    ]
    assert info.value.total == 5


def test_shape_and_batch_limits(model_path):
    pred = Predictor(model_path, max_rows=3)
    with pytest.raises(InputValidationError, match=r"expected shape \[N, 20\]"):
        pred.predict(np.zeros((2, 19), dtype=np.float32))
    with pytest.raises(InputValidationError, match="expected 1 to 3 rows, got 4"):
        pred.predict(np.array(fx.EXAMPLE_ROWS, dtype=np.float32))
    with pytest.raises(InputValidationError, match="got 0"):
        pred.predict(np.zeros((0, 20), dtype=np.float32))


def test_threads_option_and_bad_settings(model_path):
    assert Predictor(model_path, threads=2).predict(np.array(fx.EXAMPLE_ROWS, np.float32)).labels.shape == (4,)
    with pytest.raises(ValueError, match="threads"):
        Predictor(model_path, threads=0)


# --- named rows ------------------------------------------------------------------------

def _row(i=0, **changes):
    return {**dict(zip(schema.FEATURE_NAMES, fx.EXAMPLE_ROWS[i], strict=True)), **changes}


def test_named_rows_structural_problems(predictor):
    parser = RowParser(predictor.schema)
    rows = [_row(), _row(ram="2549"), _row(blue=True), [1, 2], _row(foo=1), _row(price_range=3)]
    del rows[0]["wifi"]
    with pytest.raises(InputValidationError) as info:
        parser.rows_to_array(rows)
    got = {(p.row, p.field, p.message) for p in info.value.problems}
    assert got == {
        (0, "wifi", "missing"),
        (1, "ram", "not a number: got a string"),
        (2, "blue", "not a number: got true"),
        (3, None, "expected an object of named features, got a list"),
        (4, "foo", "unknown field"),
    }  # row 5: the target field is tolerated


def test_named_rows_report_structure_and_range_problems_together(predictor):
    parser = RowParser(predictor.schema)
    with pytest.raises(InputValidationError) as info:
        parser.rows_to_array([_row(ram=10), _row(ram=None), _row(n_cores=1e300)])
    got = [(p.row, p.field, p.message.split(":")[0]) for p in info.value.problems]
    assert got == [(0, "ram", "out of the valid range [64, 32768] MB"), (1, "ram", "not a number"),
                   (2, "n_cores", "out of the valid range [1, 16] cores")]


def test_fast_and_slow_paths_agree(predictor):
    parser = RowParser(predictor.schema)
    rows = [_row(i % 4) for i in range(50)]
    fast = parser.rows_to_array(rows)
    slow_rows = [*rows, _row(price_range=1)]  # the target field forces the per-cell path
    slow = parser.rows_to_array(slow_rows)
    np.testing.assert_array_equal(slow[:-1], fast)


_valid_value = {
    "int": lambda f: st.integers(int(f.valid_min), int(f.valid_max)),
    "flag": lambda f: st.sampled_from([0, 1]),
    "float": lambda f: st.floats(f.valid_min, f.valid_max, allow_nan=False).filter(
        lambda v: f.valid_min <= np.float32(v) <= f.valid_max),
}
_valid_row = st.fixed_dictionaries({f.name: _valid_value[f.kind](f) for f in schema.FEATURES})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(_valid_row, min_size=1, max_size=8))
def test_any_valid_rows_predict_to_a_distribution(predictor, rows):
    x = RowParser(predictor.schema).rows_to_array(rows)
    pred = predictor.predict(x)
    assert pred.probabilities.shape == (len(rows), 4)
    np.testing.assert_allclose(pred.probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert ((pred.labels >= 0) & (pred.labels < 4)).all()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=_valid_row, feature=st.sampled_from(schema.FEATURES),
       bad=st.one_of(st.text(max_size=3), st.none(), st.booleans(), st.floats(), st.integers(-10**30, 10**30),
                     st.lists(st.integers(), max_size=2)))
def test_any_bad_value_is_refused_naming_its_field(predictor, row, feature, bad):
    row = {**row, feature.name: bad}
    with np.errstate(over="ignore"):
        v32 = np.float32(bad) if type(bad) in (int, float) else None  # the precision the model sees
    ok = (v32 is not None and np.isfinite(v32) and np.float32(feature.valid_min) <= v32 <= np.float32(feature.valid_max)
          and (feature.kind == "float" or v32 == np.floor(v32)))
    parser = RowParser(predictor.schema)
    if ok:
        parser.rows_to_array([row])
        return
    with pytest.raises(InputValidationError) as info:
        parser.rows_to_array([row])
    assert [(p.row, p.field) for p in info.value.problems] == [(0, feature.name)]


def test_serve_modules_never_import_keras_or_a_deep_learning_backend():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import kerasnn.serve as pkg
        names = [m.name for m in pkgutil.iter_modules(pkg.__path__)]
        assert {"predictor", "api", "ui", "commands", "triton"} <= set(names), names
        for name in names:
            importlib.import_module("kerasnn.serve." + name)
        heavy = sorted(m for m in ("keras", "torch", "tensorflow", "jax") if m in sys.modules)
        print(",".join(heavy) or "none")
    """)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "none"


def test_importing_commands_is_cheap():
    code = ("import sys, kerasnn.serve.commands; "
            "print(sorted(m for m in ('fastapi','gradio','onnxruntime','uvicorn','numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
