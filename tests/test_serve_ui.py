"""The Gradio UI: through gradio_client (standalone), mounted at /ui, and in a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import onnx_fixtures as fx
import pytest
from kerasnn.serve.predictor import Predictor

from kerasnn import schema

pytestmark = pytest.mark.serving

gr = pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

X = np.array(fx.EXAMPLE_ROWS, dtype=np.float32)
EXPECTED = fx.reference_probabilities(X)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor(fx.write_model(tmp_path_factory.mktemp("model") / "phone_price.onnx"))


@pytest.fixture(scope="module")
def demo_url(predictor):
    from kerasnn.serve.ui import build_demo

    demo = build_demo(predictor)
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, share=False,
                quiet=True, ssr_mode=False, show_error=True)
    try:
        yield demo.local_url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(demo_url):
    return gradio_client.Client(demo_url, verbose=False, download_files=tempfile.mkdtemp(prefix="gradio-dl-"))


def _ui_values(row) -> list:
    return [bool(v) if f.kind == "flag" else v for f, v in zip(schema.FEATURES, row, strict=True)]


def test_analytics_are_off():
    import kerasnn.serve.ui  # noqa: F401 - sets the variable before gradio reads it

    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_single_phone_prediction(client):
    for row, probs in zip(fx.EXAMPLE_ROWS, EXPECTED, strict=True):
        out = client.predict(*_ui_values(row), api_name="/predict")
        assert out["label"] == schema.CLASS_NAMES[int(probs.argmax())]
        got = {c["label"]: c["confidence"] for c in out["confidences"]}
        assert set(got) == set(schema.CLASS_NAMES)
        np.testing.assert_allclose([got[c] for c in schema.CLASS_NAMES], probs, atol=2e-6)


def test_single_phone_invalid_input_is_refused(client):
    values = _ui_values(fx.EXAMPLE_ROWS[0])
    values[schema.FEATURE_NAMES.index("ram")] = 10  # below the bound of the number input
    with pytest.raises(Exception, match=r"less than minimum value 64"):
        client.predict(*values, api_name="/predict")
    values = _ui_values(fx.EXAMPLE_ROWS[0])
    values[schema.FEATURE_NAMES.index("fc")] = 2.5  # inside the bounds, but not whole: our check names it
    with pytest.raises(Exception, match=r"fc: must be a whole number: got 2.5"):
        client.predict(*values, api_name="/predict")


def test_batch_csv_table_and_download(client, tmp_path):
    path = tmp_path / "phones.csv"
    lines = [",".join([*schema.FEATURE_NAMES, "price_range"])]
    lines += [",".join(map(str, [*r, t])) for r, t in zip(fx.EXAMPLE_ROWS, fx.EXAMPLE_TARGETS, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    table, download = client.predict(gradio_client.handle_file(str(path)), api_name="/predict_csv")
    headers, rows = table["headers"], table["data"]
    assert headers[-6:] == ["price_range", "label", "prob_low_cost", "prob_medium_cost", "prob_high_cost",
                            "prob_very_high_cost"]
    assert [int(r[headers.index("price_range")]) for r in rows] == EXPECTED.argmax(1).tolist()
    text = Path(download).read_text()
    assert text.splitlines()[0].startswith("battery_power,") and len(text.splitlines()) == 5


def test_batch_csv_errors_name_the_line(client, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(",".join(schema.FEATURE_NAMES) + "\n" + ",".join(["1"] * 20) + "\n")
    with pytest.raises(Exception, match=r"line 2, battery_power: out of the valid range"):
        client.predict(gradio_client.handle_file(str(path)), api_name="/predict_csv")


def test_ui_is_mounted_by_the_service(predictor):
    from kerasnn.serve.api import create_app

    app = create_app(model_path=predictor.path, ui=True)
    with fx.live_server(app) as url:
        out = gradio_client.Client(url + "/ui/", verbose=False).predict(*_ui_values(fx.EXAMPLE_ROWS[1]),
                                                                       api_name="/predict")
    assert out["label"] == schema.CLASS_NAMES[int(EXPECTED[1].argmax())]


# --- a real browser -----------------------------------------------------------------------------------

def _browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("KERASNN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"KERASNN_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing")
        pytest.skip("chromium / chromium-driver not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kerasnn-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    return driver, profile


def test_browser_submits_a_prediction_and_shows_it(predictor):
    import json

    from kerasnn.serve.api import create_app
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver, profile = _browser()
    try:
        with fx.live_server(create_app(model_path=predictor.path, ui=True)) as url:
            driver.get(url + "/ui/")
            wait = WebDriverWait(driver, 60)
            button = wait.until(ec.element_to_be_clickable((By.ID, "predict-button")))
            ram = driver.find_element(By.CSS_SELECTOR, "#feature-ram input")
            ram.clear()
            ram.send_keys("3900")  # a high-RAM phone
            battery = driver.find_element(By.CSS_SELECTOR, "#feature-battery_power input")
            battery.clear()
            battery.send_keys("1900")
            button.click()
            expected = "very high cost"
            wait.until(ec.text_to_be_present_in_element((By.ID, "prediction"), expected))
            shown = driver.find_element(By.ID, "prediction").text
            assert expected in shown and "%" in shown
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "ui_single_phone.png"))
            requested = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
            urls = {m["params"]["request"]["url"] for m in requested if m["method"] == "Network.requestWillBeSent"}
        network = {u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:"))}  # not chrome:// etc.
        assert any(u.startswith(url + "/ui") for u in network)
        outside = sorted(u for u in network if not u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")))
        assert outside == [], f"the page tried to reach beyond the machine: {outside[:5]}"
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
