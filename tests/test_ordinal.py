"""CumulativeLogits: the cumulative-logit model, checked against a float64 reference."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import expit

from kerasnn.losses import CrossEntropyLoss
from kerasnn.ordinal import CumulativeLogits


def reference_probabilities(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """P(y = k) = sigmoid(t_k - s) - sigmoid(t_{k-1} - s), in float64."""
    cdf = expit(thresholds[None, :] - scores[:, None])
    cdf = np.concatenate([np.zeros((len(scores), 1)), cdf, np.ones((len(scores), 1))], axis=1)
    return np.diff(cdf, axis=1)


def layer_with(first: float, gaps: list[float]) -> CumulativeLogits:
    layer = CumulativeLogits(len(gaps) + 2)
    layer.build((None, 1))
    layer.first_threshold.assign([first])
    if gaps:
        layer.gaps.assign(gaps)
    return layer


def test_starts_with_evenly_spaced_ordered_thresholds():
    layer = CumulativeLogits(4)
    layer.build((None, 1))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.thresholds()), [-2.0, 0.0, 2.0], atol=1e-5)
    assert len(layer.trainable_weights) == 2


@settings(max_examples=40, deadline=None)
@given(first=st.floats(-5, 5), gaps=st.lists(st.floats(-6, 4), min_size=0, max_size=4),
       scores=st.lists(st.floats(-30, 30), min_size=1, max_size=6))
def test_probabilities_match_the_float64_reference(first, gaps, scores):
    layer = layer_with(first, gaps)
    thresholds = keras.ops.convert_to_numpy(layer.thresholds()).astype(np.float64)
    assert np.all(np.diff(thresholds) > 0)
    s = np.asarray(scores, dtype=np.float32)
    log_p = keras.ops.convert_to_numpy(layer(s[:, None])).astype(np.float64)
    assert np.all(np.isfinite(log_p))
    expected = reference_probabilities(s.astype(np.float64), thresholds)
    np.testing.assert_allclose(np.exp(log_p), expected, atol=2e-6)
    # Where a class is likely, its log-probability is accurate relative to itself.
    big = expected > 1e-3
    np.testing.assert_allclose(log_p[big], np.log(expected[big]), atol=1e-4)


def test_extreme_scores_give_finite_log_probabilities_and_gradients():
    layer = layer_with(-1.0, [0.5, 0.5])
    s = keras.ops.convert_to_tensor(np.array([[-200.0], [0.0], [200.0]], dtype="float32"))
    log_p = keras.ops.convert_to_numpy(layer(s))
    assert np.all(np.isfinite(log_p))
    assert log_p[0].argmax() == 0 and log_p[2].argmax() == 3
    loss = CrossEntropyLoss()
    y = np.array([3, 1, 0])  # the two extreme rows put their mass on the wrong end
    value = float(keras.ops.convert_to_numpy(loss(y, layer(s))))
    assert np.isfinite(value) and value > 50


def test_softmax_of_the_output_is_the_distribution():
    layer = layer_with(0.2, [1.0, -0.5])
    s = np.linspace(-4, 4, 9, dtype="float32")[:, None]
    log_p = layer(s)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(log_p, axis=-1)),
                               np.exp(keras.ops.convert_to_numpy(log_p)), atol=1e-6)


def test_two_classes_is_logistic_regression_on_the_score():
    layer = layer_with(0.7, [])
    s = np.array([-1.0, 0.7, 3.0], dtype="float32")[:, None]
    p = np.exp(keras.ops.convert_to_numpy(layer(s)))
    np.testing.assert_allclose(p[:, 1], expit(s[:, 0] - 0.7), atol=1e-6)


def test_config_round_trip():
    layer = CumulativeLogits(5, name="ord")
    clone = CumulativeLogits.from_config(layer.get_config())
    assert clone.num_classes == 5 and clone.name == "ord"


@pytest.mark.parametrize("bad", [1, 0, 2.5, True, "4"])
def test_bad_num_classes_names_the_argument(bad):
    with pytest.raises(ValueError, match="num_classes"):
        CumulativeLogits(bad)


def test_a_score_wider_than_one_is_refused():
    with pytest.raises(ValueError, match=r"score of shape \[N, 1\]"):
        CumulativeLogits(4).build((None, 3))


def test_an_ordinal_model_exports_to_onnx_on_this_backend(tmp_path, backend):
    import onnxruntime as ort

    from kerasnn.data import Standardizer, synthetic_phone_prices
    from kerasnn.export import export_onnx
    from kerasnn.models import build_model
    from kerasnn.schema import INPUT_NAME

    model = build_model((), head="ordinal", seed=0)
    model.ordinal_layer.gaps.assign([-3.0, 0.5])  # one narrow gap: the log(1 - exp(-g)) term matters
    rows = synthetic_phone_prices(300, seed=2).x
    standardizer = Standardizer.fit(rows)
    summary = export_onnx(model, standardizer, tmp_path / "m.onnx", sample_x=rows,
                          metadata={"accuracy": 0.5, "accuracy_kind": "untrained", "data_sha256": "",
                                    "synthetic": "true"})
    assert summary["max_abs_diff"] <= 1e-5 and summary["backend"] == backend
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = session.run(None, {INPUT_NAME: rows[:50]})
    scores = standardizer.transform(rows[:50]) @ model.output_layer.get_weights()[0][:, 0] \
        + model.output_layer.get_weights()[1][0]
    thresholds = keras.ops.convert_to_numpy(model.ordinal_layer.thresholds()).astype(np.float64)
    np.testing.assert_allclose(probs, reference_probabilities(scores.astype(np.float64), thresholds), atol=1e-5)
