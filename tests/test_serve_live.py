"""A real uvicorn server on loopback: an unmodified v2 client (tritonclient.http) and a bounded load."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import onnx_fixtures as fx
import pytest
import tritonclient.http as triton
from kerasnn.serve.api import create_app
from tritonclient.utils import InferenceServerException

from kerasnn import schema

pytestmark = pytest.mark.serving

X = np.array(fx.EXAMPLE_ROWS, dtype=np.float32)
EXPECTED = fx.reference_probabilities(X)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    model = fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx")
    with fx.live_server(create_app(model_path=model, ui=False)) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    c = triton.InferenceServerClient(url.removeprefix("http://"), connection_timeout=10, network_timeout=10)
    yield c
    c.close()


def test_health_and_metadata_through_tritonclient(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("phone_price") and client.is_model_ready("phone_price", "1")
    assert not client.is_model_ready("other")
    meta = client.get_model_metadata("phone_price")
    assert meta["inputs"][0] == {"name": "features", "datatype": "FP32", "shape": [-1, 20]}
    assert client.get_server_metadata()["name"] == "kerasnn"
    config = client.get_model_config("phone_price")
    assert config["output"][0]["dims"] == [4]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_through_tritonclient(client, binary):
    inp = triton.InferInput("features", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary),
               triton.InferRequestedOutput("label", binary_data=binary)]
    result = client.infer("phone_price", [inp], outputs=outputs, request_id="abc-1")
    np.testing.assert_allclose(result.as_numpy("probabilities"), EXPECTED, atol=2e-6)
    assert result.as_numpy("label").tolist() == EXPECTED.argmax(1).tolist()
    assert result.as_numpy("label").dtype == np.int64
    assert result.get_response()["id"] == "abc-1"


def test_infer_defaults_and_one_requested_output(client):
    inp = triton.InferInput("features", [1, 20], "FP32")
    inp.set_data_from_numpy(X[:1])
    result = client.infer("phone_price", [inp])  # no outputs: all of them, binary
    assert {o["name"] for o in result.get_response()["outputs"]} == {"probabilities", "label"}
    result = client.infer("phone_price", [inp], outputs=[triton.InferRequestedOutput("label")], model_version="1")
    assert result.as_numpy("probabilities") is None
    assert result.as_numpy("label").tolist() == [int(EXPECTED[0].argmax())]


def test_tritonclient_sees_the_error_messages(client):
    bad = X[:1].copy()
    bad[0, schema.FEATURE_NAMES.index("ram")] = 1
    inp = triton.InferInput("features", [1, 20], "FP32")
    inp.set_data_from_numpy(bad)
    with pytest.raises(InferenceServerException, match=r"input 'features': row 0, ram: out of the valid range"):
        client.infer("phone_price", [inp])
    narrow = triton.InferInput("features", [1, 19], "FP32")
    narrow.set_data_from_numpy(X[:1, :19])
    with pytest.raises(InferenceServerException, match=r"shape must be \[N, 20\]"):
        client.infer("phone_price", [narrow])
    with pytest.raises(InferenceServerException, match="unknown model 'other'"):
        client.infer("other", [inp])


def test_bounded_concurrent_load_has_no_errors_and_matches_single_requests(url):
    """2,000 requests at concurrency 32 over loopback: all 200, all equal to the single-request answers."""
    rows = [dict(zip(schema.FEATURE_NAMES, r, strict=True)) for r in fx.EXAMPLE_ROWS]
    with httpx.Client(base_url=url) as c:
        single_predict = [c.post("/predict", json=r).json() for r in rows]
        single_infer = [c.post("/v2/models/phone_price/infer", json={
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 20], "data": fx.EXAMPLE_ROWS[i]}]
        }).json()["outputs"] for i in range(4)]

    async def run() -> list[tuple[int, int, object]]:
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as ac:
            sem = asyncio.Semaphore(32)

            async def one(i: int):
                k = i % 4
                async with sem:
                    if i % 2:
                        r = await ac.post("/predict", json=rows[k])
                        return i, r.status_code, r.json()
                    r = await ac.post("/v2/models/phone_price/infer", json={"id": str(i), "inputs": [
                        {"name": "features", "datatype": "FP32", "shape": [1, 20], "data": fx.EXAMPLE_ROWS[k]}]})
                    return i, r.status_code, r.json()

            return await asyncio.gather(*(one(i) for i in range(2000)))

    results = asyncio.run(run())
    assert all(status == 200 for _, status, _ in results)
    for i, _, body in results:
        if i % 2:
            assert body == single_predict[i % 4]
        else:
            assert body["id"] == str(i) and body["outputs"] == single_infer[i % 4]
