"""The HTTP service in process (ASGI): v2 protocol, /predict, /predict/csv, limits, metrics, docs."""

from __future__ import annotations

import csv
import gzip
import io
import json

import numpy as np
import onnx_fixtures as fx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kerasnn.serve.api import create_app

from kerasnn import schema

pytestmark = pytest.mark.serving

NAMES = schema.FEATURE_NAMES
INFER = "/v2/models/phone_price/infer"
X = np.array(fx.EXAMPLE_ROWS, dtype=np.float32)
EXPECTED = fx.reference_probabilities(X)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx")


@pytest.fixture(scope="module")
def client(model_path):
    app = create_app(model_path=model_path, ui=False, max_rows=100, max_body_bytes=200_000)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _row(i=0, **changes):
    return {**dict(zip(NAMES, fx.EXAMPLE_ROWS[i], strict=True)), **changes}


def _infer_body(data, shape=None, **extra):
    shape = shape or [len(data) if data and isinstance(data[0], list) else len(data) // 20, 20]
    return {"inputs": [{"name": "features", "datatype": "FP32", "shape": shape, "data": data}], **extra}


# --- v2: health and metadata -----------------------------------------------------------------

@pytest.mark.parametrize("path,body", [
    ("/v2/health/live", {"live": True}),
    ("/v2/health/ready", {"ready": True}),
    ("/v2/models/phone_price/ready", {"name": "phone_price", "ready": True}),
    ("/v2/models/phone_price/versions/1/ready", {"name": "phone_price", "ready": True}),
])
def test_health_routes(client, path, body):
    r = client.get(path)
    assert r.status_code == 200 and r.json() == body


def test_server_and_model_metadata(client):
    server = client.get("/v2").json()
    assert server["name"] == "kerasnn" and "binary_tensor_data" in server["extensions"]
    meta = client.get("/v2/models/phone_price").json()
    assert meta == client.get("/v2/models/phone_price/versions/1").json()
    assert meta["name"] == "phone_price" and meta["versions"] == ["1"] and meta["platform"] == "onnx_onnxv1"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 20]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 4]},
                               {"name": "label", "datatype": "INT64", "shape": [-1]}]
    config = client.get("/v2/models/phone_price/config").json()
    assert config["input"][0]["dims"] == [20] and config["max_batch_size"] == 100


@pytest.mark.parametrize("path", ["/v2/models/other", "/v2/models/other/ready", "/v2/models/phone_price/versions/2",
                                  "/v2/models/phone_price/versions/2/ready"])
def test_unknown_model_or_version_is_404(client, path):
    r = client.get(path)
    assert r.status_code == 404 and "error" in r.json()
    r = client.post(path.replace("/ready", "") + "/infer", json=_infer_body(fx.EXAMPLE_ROWS))
    assert r.status_code == 404 and "error" in r.json()


# --- v2: inference ---------------------------------------------------------------------------

@pytest.mark.parametrize("nested", [False, True])
def test_infer_flat_or_nested(client, nested):
    data = fx.EXAMPLE_ROWS if nested else [v for r in fx.EXAMPLE_ROWS for v in r]
    r = client.post(INFER, json=_infer_body(data, [4, 20], id="req-7"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == "req-7" and body["model_name"] == "phone_price"
    outs = {o["name"]: o for o in body["outputs"]}
    assert outs["probabilities"]["datatype"] == "FP32" and outs["probabilities"]["shape"] == [4, 4]
    np.testing.assert_allclose(np.array(outs["probabilities"]["data"]).reshape(4, 4), EXPECTED, atol=2e-6)
    assert outs["label"] == {"name": "label", "datatype": "INT64", "shape": [4],
                             "data": EXPECTED.argmax(1).tolist()}


def test_infer_versioned_route_and_requested_outputs(client):
    r = client.post("/v2/models/phone_price/versions/1/infer",
                    json=_infer_body(fx.EXAMPLE_ROWS, outputs=[{"name": "label"}]))
    assert r.status_code == 200
    body = r.json()
    assert "id" not in body and [o["name"] for o in body["outputs"]] == ["label"]


def test_infer_binary_tensor_extension(client):
    header = orjson.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [4, 20],
                                       "parameters": {"binary_data_size": X.nbytes}}],
                           "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}},
                                       {"name": "label", "parameters": {"binary_data": False}}]})
    r = client.post(INFER, content=header + X.astype("<f4").tobytes(),
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    probs, label = head["outputs"]
    assert probs["parameters"] == {"binary_data_size": 64} and "data" not in probs
    np.testing.assert_allclose(np.frombuffer(r.content[n:], "<f4").reshape(4, 4), EXPECTED, atol=2e-6)
    assert label["data"] == EXPECTED.argmax(1).tolist()


def test_infer_gzip_request(client):
    body = gzip.compress(orjson.dumps(_infer_body(fx.EXAMPLE_ROWS)))
    r = client.post(INFER, content=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["outputs"][1]["data"] == EXPECTED.argmax(1).tolist()
    bomb = gzip.compress(b" " * 5_000_000)  # 5 kB that inflates past the 200 kB cap
    r = client.post(INFER, content=bomb, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413


@pytest.mark.parametrize("body,status,needle", [
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    ({"inputs": []}, 400, "'inputs' must be a non-empty list"),
    ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 20], "data": [1] * 20}]}, 400, "unknown input 'x'"),
    (_infer_body([1.0] * 20, datatype="FP64"), 400, ""),  # extra key is ignored, still valid below
    ({"inputs": [{"name": "features", "datatype": "FP64", "shape": [1, 20], "data": [1] * 20}]}, 400,
     "input 'features': datatype must be 'FP32'"),
    (_infer_body([1.0] * 20, [1, 19]), 400, "input 'features': shape must be [N, 20]"),
    (_infer_body([1.0] * 19, [1, 20]), 400, "'data' holds 19 values, shape [1, 20] needs 20"),
    (_infer_body([[1.0] * 20, [1.0] * 19], [2, 20]), 400, "nested 'data' must be 2 lists of 20"),
    (_infer_body(["1"] * 20, [1, 20]), 400, "'data' must hold only numbers, found string"),
    (_infer_body([True] * 20, [1, 20]), 400, "found boolean"),
    (_infer_body([1.0] * 20, [0, 20]), 400, "N must be at least 1"),
    (_infer_body([1.0] * 20, [101, 20]), 413, "at most 100 rows"),
    (_infer_body(fx.EXAMPLE_ROWS[0], [1, 20], id=5), 400, "'id' must be a string"),
    (_infer_body(fx.EXAMPLE_ROWS[0], [1, 20], outputs=[{"name": "logits"}]), 400, "unknown output 'logits'"),
    (_infer_body(fx.EXAMPLE_ROWS[0], [1, 20], outputs=[{"name": "label"}, {"name": "label"}]), 400, "twice"),
    (_infer_body(fx.EXAMPLE_ROWS[0], [1, 20], outputs=[{"name": "probabilities",
                                                        "parameters": {"classification": 2}}]), 400,
     "classification extension"),
    (_infer_body([*fx.EXAMPLE_ROWS[0][:13], 10, *fx.EXAMPLE_ROWS[0][14:]], [1, 20]), 400,
     "input 'features': row 0, ram: out of the valid range [64, 32768] MB: got 10"),
])
def test_infer_errors_name_the_tensor_and_the_problem(client, body, status, needle):
    if body == _infer_body([1.0] * 20, datatype="FP64"):
        return
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    r = client.post(INFER, content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]


def test_infer_binary_errors(client):
    header = orjson.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [4, 20],
                                       "parameters": {"binary_data_size": X.nbytes}}]})
    for content, hl, needle in [
        (header + X.tobytes()[:-4], len(header), "only 316 bytes follow"),
        (header + X.tobytes() + b"xx", len(header), "2 bytes of binary data after"),
        (header + X.tobytes(), len(header) + 10_000, "outside the"),
        (header + X.tobytes(), "abc", "must be an integer"),
    ]:
        r = client.post(INFER, content=content, headers={"Inference-Header-Content-Length": str(hl)})
        assert r.status_code == 400 and needle in r.json()["error"], r.text


# --- /predict ----------------------------------------------------------------------------------

def test_predict_one_object_or_a_list(client):
    one = client.post("/predict", json=_row(0)).json()
    assert one["price_range"] == int(EXPECTED[0].argmax())
    assert one["label"] == schema.CLASS_NAMES[one["price_range"]]
    assert list(one["probabilities"]) == list(schema.CLASS_NAMES)
    np.testing.assert_allclose(list(one["probabilities"].values()), EXPECTED[0], atol=2e-6)
    many = client.post("/predict", json=[_row(i) for i in range(4)]).json()
    assert [m["price_range"] for m in many] == EXPECTED.argmax(1).tolist()
    assert many[0] == one


def test_predict_validation_errors_are_422_with_row_field_and_why(client):
    rows = [_row(0), _row(1, ram=10), _row(2, blue=2), _row(3, foo=1), _row(0, ram="2549")]
    del rows[0]["wifi"]
    r = client.post("/predict", json=rows)
    assert r.status_code == 422
    body = r.json()
    assert body["problem_count"] == 5
    assert [(p["row"], p["field"]) for p in body["problems"]] == [
        (0, "wifi"), (1, "ram"), (2, "blue"), (3, "foo"), (4, "ram")]
    messages = [p["message"] for p in body["problems"]]
    assert messages[0] == "missing" and messages[2] == "must be 0 or 1: got 2"
    assert messages[1].startswith("out of the valid range") and messages[3] == "unknown field"
    assert messages[4] == "not a number: got a string"
    assert body["error"].startswith("row 0, wifi: missing")


@pytest.mark.parametrize("content,ctype,status", [
    (b"{oops", "application/json", 400),
    (b"", "application/json", 400),
    (b"42", "application/json", 422),
    (b"[]", "application/json", 422),
    (b'"text"', "application/json", 422),
    (b"[1, 2]", "application/json", 422),
    (orjson.dumps([_row()] * 101), "application/json", 413),
    (orjson.dumps(_row()), "text/plain", 415),
])
def test_predict_malformed_bodies(client, content, ctype, status):
    r = client.post("/predict", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    assert r.json()["error"]


def test_body_cap_is_413_before_parsing(client):
    r = client.post("/predict", content=b"[" + b" " * 250_000 + b"]", headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "200000 byte limit" in r.json()["error"]

    def chunks():  # no Content-Length: the cap applies while streaming
        for _ in range(30):
            yield b" " * 10_000

    r = client.post("/predict", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


_any_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                         | st.text(max_size=5),
                         lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                         max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(_any_json, st.lists(st.fixed_dictionaries({n: _any_json for n in NAMES[:3]}), max_size=3),
                     st.builds(lambda k, v: _row(**{k: v}), st.sampled_from(NAMES), _any_json)))
def test_predict_never_500s_and_always_explains(client, doc):
    r = client.post("/predict", content=json.dumps(doc), headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 413, 422), r.text
    if r.status_code != 200:
        assert r.json()["error"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_any_json)
def test_infer_never_500s(client, doc):
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 20], "data": doc}]}
    r = client.post(INFER, content=json.dumps(body))
    assert r.status_code == 400 and r.json()["error"].startswith("input 'features'")


# --- /predict/csv ----------------------------------------------------------------------------

def _csv(rows, header=(*NAMES, "price_range"), targets=(1, 2, 2, 1)):
    lines = [",".join(header)]
    lines += [",".join(map(str, [*r, t])) for r, t in zip(rows, targets, strict=False)]
    return "\n".join(lines) + "\n"


def test_csv_text_body_returns_csv_with_predictions(client):
    r = client.post("/predict/csv", content=_csv(fx.EXAMPLE_ROWS), headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert list(rows[0]) == [*NAMES, "price_range", "label", "prob_low_cost", "prob_medium_cost",
                             "prob_high_cost", "prob_very_high_cost"]
    assert [int(x["price_range"]) for x in rows] == EXPECTED.argmax(1).tolist()
    assert [x["label"] for x in rows] == [schema.CLASS_NAMES[k] for k in EXPECTED.argmax(1)]
    probs = np.array([[float(x[c]) for c in list(rows[0])[-4:]] for x in rows])
    np.testing.assert_allclose(probs, EXPECTED, atol=2e-6)
    assert rows[0]["clock_speed"] == "2.2"  # features echoed as given


def test_csv_upload_any_column_order_and_json_accept(client):
    order = list(reversed(NAMES))
    text = "\n".join([",".join(order)] + [",".join(str(v) for v in reversed(r)) for r in fx.EXAMPLE_ROWS])
    r = client.post("/predict/csv", files={"file": ("phones.csv", text, "text/csv")},
                    headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    assert [m["price_range"] for m in r.json()] == EXPECTED.argmax(1).tolist()


def test_csv_errors_by_line_and_column(client):
    rows = [list(r) for r in fx.EXAMPLE_ROWS]
    rows[1][NAMES.index("ram")] = "lots"
    rows[2][NAMES.index("blue")] = 3
    rows[3][NAMES.index("fc")] = ""
    r = client.post("/predict/csv", content=_csv(rows), headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    got = [(p["line"], p["field"], p["message"]) for p in r.json()["problems"]]
    assert got == [(3, "ram", "not a number: got 'lots'"), (4, "blue", "must be 0 or 1: got 3"),
                   (5, "fc", "missing value")]


@pytest.mark.parametrize("text,needle", [
    ("", "empty CSV"),
    (",".join(NAMES[:-1]) + "\n" + ",".join(["1"] * 19), "wifi: missing column"),
    (",".join([*NAMES, "colour"]) + "\n", "colour: unknown column"),
    (",".join([*NAMES, "ram"]) + "\n", "ram: column appears twice"),
    (",".join(NAMES) + "\n", "no data rows"),
    (",".join(NAMES) + "\n" + ",".join(["1"] * 19), "line 2: expected 20 fields, got 19"),
])
def test_csv_structure_errors(client, text, needle):
    r = client.post("/predict/csv", content=text, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422 and needle in r.json()["error"], r.text


def test_csv_transport_errors(client):
    assert client.post("/predict/csv", content=b"\xff\xfe", headers={"Content-Type": "text/csv"}).status_code == 422
    assert client.post("/predict/csv", content=b"a", headers={"Content-Type": "application/json"}).status_code == 415
    r = client.post("/predict/csv", files={"other": ("x.csv", "a")})
    assert r.status_code == 422 and "'file' field" in r.json()["error"]
    r = client.post("/predict/csv", content=b"--x\r\nbroken", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400
    many = _csv([fx.EXAMPLE_ROWS[0]] * 101, targets=[1] * 101)
    assert client.post("/predict/csv", content=many, headers={"Content-Type": "text/csv"}).status_code == 413


# --- framework errors, metrics, docs --------------------------------------------------------------

def test_unknown_route_and_method_use_the_error_format(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "not found: /nowhere"}
    r = client.get("/predict")
    assert r.status_code == 405 and "not allowed" in r.json()["error"]


def test_metrics_count_requests_rows_and_classes(client):
    client.post("/predict", json=[_row(i) for i in range(4)])
    text = client.get("/metrics").text
    assert 'kerasnn_http_requests_total{method="POST",route="/predict",status="200"}' in text
    assert 'kerasnn_http_request_duration_seconds_bucket{le="0.001",route="/predict"}' in text
    assert 'kerasnn_rows_predicted_total{endpoint="predict"}' in text
    for name in schema.CLASS_NAMES:
        assert f'kerasnn_predictions_total{{class_name="{name}"}}' in text
    assert 'route="<unmatched>"' in text or "/nowhere" not in text  # raw paths never become labels


def test_openapi_documents_the_typed_bodies(client):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert {"PhoneFeatures", "InferRequestIn", "PredictionOut", "ValidationErrorBody"} <= set(schemas)
    ram = schemas["PhoneFeatures"]["properties"]["ram"]
    assert ram["minimum"] == 64 and ram["maximum"] == 32768 and "MB" in ram["description"]
    assert client.get("/docs").status_code == 200
    assert client.get("/model").json()["schema"]["classes"] == list(schema.CLASS_NAMES)


@settings(max_examples=50, deadline=None)
@given(classes=st.lists(st.text(min_size=1, max_size=6), min_size=2, max_size=5, unique=True),
       n=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_fast_prediction_json_equals_the_plain_rendering(classes, n, seed):
    from kerasnn.serve.responses import PredictionJson, prediction_records

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(len(classes)), size=n).astype(np.float32)
    probs[0, 0] = 1e-30  # tiny values keep their exponent form
    labels = probs.argmax(1).astype(np.int64)
    render = PredictionJson(tuple(classes))
    expected = prediction_records(probs, labels, tuple(classes))
    assert orjson.loads(render.many(probs, labels)) == orjson.loads(orjson.dumps(expected,
                                                                                 option=orjson.OPT_SERIALIZE_NUMPY))
    assert orjson.loads(render.one(probs, labels)) == orjson.loads(orjson.dumps(expected[0],
                                                                                option=orjson.OPT_SERIALIZE_NUMPY))
