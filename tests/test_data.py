"""The phone-price schema, loader, synthetic rows, splits and standardization."""

import csv
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerasnn import schema
from kerasnn.data import (
    DATA_ENV_VAR,
    Standardizer,
    load_phone_prices,
    resolve_data_path,
    stratified_split,
    synthetic_phone_prices,
)
from kerasnn.errors import DataError

HEADER = list(schema.FEATURE_NAMES) + [schema.TARGET]
GOOD_ROW = ["842", "0", "2.2", "0", "1", "0", "7", "0.6", "188", "2", "2", "20", "756", "2549", "9", "7",
            "19", "0", "0", "1", "1"]


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def set_cell(row, column, value, header=HEADER):
    row = list(row)
    row[header.index(column)] = value
    return row


# --- schema -------------------------------------------------------------------------------------

def test_schema_has_twenty_features_in_the_data_set_order():
    assert schema.N_FEATURES == 20
    assert schema.FEATURE_NAMES[0] == "battery_power" and schema.FEATURE_NAMES[-1] == "wifi"
    assert schema.CLASS_NAMES == ("low cost", "medium cost", "high cost", "very high cost")


def test_valid_ranges_are_wider_than_observed_and_flags_are_binary():
    for f in schema.FEATURES:
        assert f.valid_min <= f.observed_min <= f.observed_max <= f.valid_max
        if f.kind == "flag":
            assert (f.valid_min, f.valid_max) == (0, 1)
        else:
            assert (f.valid_min, f.valid_max) != (f.observed_min, f.observed_max), f.name


def test_model_metadata_round_trips_the_schema_as_json():
    meta = schema.model_metadata(backend="jax", accuracy=0.9)
    assert all(isinstance(v, str) for v in meta.values())
    decoded = json.loads(meta["kerasnn.schema"])
    assert [f["name"] for f in decoded["features"]] == list(schema.FEATURE_NAMES)
    assert decoded["classes"] == list(schema.CLASS_NAMES)
    assert meta["backend"] == "jax" and json.loads(meta["accuracy"]) == 0.9


def test_model_metadata_check_names_what_is_wrong():
    good = schema.model_metadata(backend="jax", keras_version="3", kerasnn_version="0.1.0", data_sha256="0" * 64,
                                 synthetic="false", accuracy=0.97, accuracy_kind="5-fold CV")
    schema.check_model_metadata(good)
    with pytest.raises(ValueError, match="lacks data_sha256, accuracy_kind"):
        schema.check_model_metadata({k: v for k, v in good.items() if k not in ("data_sha256", "accuracy_kind")})
    with pytest.raises(ValueError, match="synthetic must be 'true' or 'false', got 'yes'"):
        schema.check_model_metadata({**good, "synthetic": "yes"})
    for bad in ("1.5", "-0.1", "true", "high", "null"):
        with pytest.raises(ValueError, match="accuracy must be a number in"):
            schema.check_model_metadata({**good, "accuracy": bad})


def test_unknown_feature_lookup_names_it():
    with pytest.raises(KeyError, match="'screen_size'"):
        schema.feature("screen_size")


# --- loading good files --------------------------------------------------------------------------

def test_real_file_loads_with_the_documented_shape_and_balance(real_data_path):
    data = load_phone_prices(real_data_path)
    assert data.x.shape == (1600, 20) and data.x.dtype == np.float32
    assert np.bincount(data.y).tolist() == [400, 400, 400, 400]
    assert data.sha256 == "17b2297f91ae75474fa7a4662294d83dfac252c3b7326c8e579512f60a962650"


def test_columns_are_matched_by_name_not_position(tmp_path):
    order = list(reversed(HEADER))
    straight = load_phone_prices(write_csv(tmp_path / "a.csv", HEADER, [GOOD_ROW]))
    shuffled = load_phone_prices(write_csv(tmp_path / "b.csv", order, [list(reversed(GOOD_ROW))]))
    np.testing.assert_array_equal(straight.x, shuffled.x)
    assert straight.y.tolist() == shuffled.y.tolist() == [1]


def test_target_is_optional_when_not_required(tmp_path):
    path = write_csv(tmp_path / "x.csv", HEADER[:-1], [GOOD_ROW[:-1]])
    assert load_phone_prices(path, require_target=False).y is None
    with pytest.raises(DataError, match="missing column 'price_range'"):
        load_phone_prices(path)


# --- malformed files: one error type naming file, line, column and value ------------------------

@pytest.mark.parametrize(
    "column, value, message",
    [
        ("clock_speed", "fast", r"line 3, column 'clock_speed': value 'fast' is not a number"),
        ("ram", "nan", r"line 3, column 'ram': value 'nan' is not a number"),
        ("ram", "", r"line 3, column 'ram': value '' is not a number"),
        ("ram", "inf", r"line 3, column 'ram': value 'inf' must be a whole number in 64\.\.32768 MB"),
        ("ram", "40000", r"line 3, column 'ram': value '40000' must be a whole number"),
        ("battery_power", "1500.5", r"column 'battery_power': value '1500.5' must be a whole number"),
        ("m_dep", "-0.2", r"line 3, column 'm_dep': value '-0.2' must be a number in 0\.05\.\.3 cm"),
        ("wifi", "2", r"line 3, column 'wifi': value '2' must be 0 or 1"),
        ("price_range", "4", r"line 3, column 'price_range': value '4' must be a class index 0\.\.3"),
        ("price_range", "1.5", r"column 'price_range': value '1.5' must be a class index"),
    ],
)
def test_bad_cell_is_reported_with_file_line_column_and_value(tmp_path, column, value, message):
    path = write_csv(tmp_path / "bad.csv", HEADER, [GOOD_ROW, set_cell(GOOD_ROW, column, value), GOOD_ROW])
    with pytest.raises(DataError, match=message) as info:
        load_phone_prices(path)
    assert str(path) in str(info.value)


def test_missing_column_is_named(tmp_path):
    header = [c for c in HEADER if c != "px_width"]
    row = [v for c, v in zip(HEADER, GOOD_ROW) if c != "px_width"]
    with pytest.raises(DataError, match=r"line 1: missing column 'px_width'"):
        load_phone_prices(write_csv(tmp_path / "m.csv", header, [row]))


def test_extra_column_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"line 1: unexpected column 'colour'"):
        load_phone_prices(write_csv(tmp_path / "e.csv", HEADER + ["colour"], [GOOD_ROW + ["red"]]))


def test_duplicated_column_is_an_error(tmp_path):
    with pytest.raises(DataError, match=r"duplicated column 'ram'"):
        load_phone_prices(write_csv(tmp_path / "d.csv", HEADER + ["ram"], [GOOD_ROW + ["300"]]))


def test_empty_file_and_header_only_file_are_errors(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_phone_prices(empty)
    with pytest.raises(DataError, match="no data rows after the header"):
        load_phone_prices(write_csv(tmp_path / "h.csv", HEADER, []))


def test_ragged_row_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(GOOD_ROW) + ",7,8\n")
    with pytest.raises(DataError, match="ragged.csv"):
        load_phone_prices(path)


def test_missing_file_and_directory_are_errors(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_phone_prices(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory"):
        load_phone_prices(tmp_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from([f for f in schema.FEATURES if f.kind != "flag"]), st.floats(allow_nan=False))
def test_any_value_outside_the_valid_range_is_rejected(tmp_path_factory, feat, value):
    inside = feat.valid_min <= value <= feat.valid_max and (feat.kind != "int" or float(value).is_integer())
    path = write_csv(tmp_path_factory.mktemp("h") / "v.csv", HEADER, [set_cell(GOOD_ROW, feat.name, repr(value))])
    if inside:
        assert load_phone_prices(path).x[0, schema.FEATURE_NAMES.index(feat.name)] == np.float32(value)
    else:
        with pytest.raises(DataError, match=rf"line 2, column '{feat.name}'"):
            load_phone_prices(path)


# --- where the data comes from -------------------------------------------------------------------

def test_resolution_order_is_argument_then_environment_then_default(tmp_path, monkeypatch):
    a = write_csv(tmp_path / "a.csv", HEADER, [GOOD_ROW])
    b = write_csv(tmp_path / "b.csv", HEADER, [GOOD_ROW])
    monkeypatch.setenv(DATA_ENV_VAR, str(b))
    assert resolve_data_path(a) == a
    assert resolve_data_path() == b
    monkeypatch.delenv(DATA_ENV_VAR)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"data/phone_price\.csv: no data file here .*--synthetic"):
        resolve_data_path()


# --- synthetic rows, splits, standardization -----------------------------------------------------

def test_synthetic_rows_are_schema_valid_balanced_and_marked(tmp_path):
    data = synthetic_phone_prices(400, seed=3)
    assert data.synthetic and data.sha256 is None and "synthetic" in data.source
    assert np.bincount(data.y).tolist() == [100] * 4
    header = list(schema.FEATURE_NAMES) + [schema.TARGET]
    rows = [[repr(float(v)) for v in x] + [str(int(y))] for x, y in zip(data.x, data.y)]
    reloaded = load_phone_prices(write_csv(tmp_path / "s.csv", header, rows))
    np.testing.assert_array_equal(reloaded.x, data.x)
    np.testing.assert_array_equal(synthetic_phone_prices(400, seed=3).x, data.x)


def test_synthetic_rejects_tiny_n():
    with pytest.raises(ValueError, match="n must be an integer >= 8"):
        synthetic_phone_prices(3)


def test_split_is_stratified_and_seeded():
    data = synthetic_phone_prices(400, seed=1)
    _x_tr, x_te, y_tr, y_te = stratified_split(data.x, data.y, 0.2, seed=5)
    assert len(x_te) == 80 and np.bincount(y_te).tolist() == [20] * 4 and np.bincount(y_tr).tolist() == [80] * 4
    again = stratified_split(data.x, data.y, 0.2, seed=5)
    np.testing.assert_array_equal(again[1], x_te)
    with pytest.raises(ValueError, match="test_size"):
        stratified_split(data.x, data.y, 1.5)


def test_standardizer_uses_training_statistics_and_round_trips():
    data = synthetic_phone_prices(200, seed=2)
    x_tr, _x_te, _, _ = stratified_split(data.x, data.y, 0.25, seed=0)
    st_ = Standardizer.fit(x_tr)
    z = st_.transform(x_tr)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(st_.mean), x_tr.astype(np.float64).mean(axis=0), rtol=1e-12)
    assert Standardizer.from_dict(json.loads(json.dumps(st_.to_dict()))) == st_
    with pytest.raises(DataError, match="scale finite and positive"):
        Standardizer.from_dict({**st_.to_dict(), "scale": [0.0] * 20})
