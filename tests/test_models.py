"""PhonePriceModel: the tutorial's shape, its variants, serialization."""

import keras
import numpy as np
import pytest

from kerasnn.layers import BatchNorm1d, Dropout, Linear
from kerasnn.models import PhonePriceModel, build_model


def test_tutorial_network_shapes_and_parameter_count():
    model = build_model(seed=0)
    kernels = [layer.kernel.shape for layer in model.layers if isinstance(layer, Linear)]
    assert [tuple(k) for k in kernels] == [(20, 128), (128, 256), (256, 4)]
    assert model.count_params() == 20 * 128 + 128 + 128 * 256 + 256 + 256 * 4 + 4
    out = model(np.zeros((5, 20), dtype="float32"))
    assert tuple(out.shape) == (5, 4)


def test_variant_builder_adds_batch_norm_and_dropout_per_hidden_block():
    model = build_model(hidden_units=(32, 16, 8), dropout=0.3, batch_norm=True, seed=0)
    kinds = [type(layer).__name__ for layer in model.hidden_layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 3
    assert all(layer.p == pytest.approx(0.3) for layer in model.hidden_layers if isinstance(layer, Dropout))
    assert sum(isinstance(layer, BatchNorm1d) for layer in model.hidden_layers) == 3


def test_same_seed_gives_same_initial_weights():
    a, b = build_model(seed=7), build_model(seed=7)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    c = build_model(seed=8)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])


def test_dropout_is_active_only_in_training():
    model = build_model(hidden_units=(64,), dropout=0.5, seed=0)
    x = np.ones((4, 20), dtype="float32")
    eval_a = keras.ops.convert_to_numpy(model(x, training=False))
    eval_b = keras.ops.convert_to_numpy(model(x, training=False))
    train_out = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_array_equal(eval_a, eval_b)
    assert not np.allclose(train_out, eval_a)


def test_no_hidden_layer_is_multinomial_logistic_regression():
    model = build_model(hidden_units=(), seed=0)
    assert model.hidden_layers == [] and model.count_params() == 20 * 4 + 4
    x = np.random.default_rng(0).normal(size=(3, 20)).astype("float32")
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x @ kernel + bias, atol=1e-5)


@pytest.mark.parametrize("hidden_units", [(), (16,)])
def test_ordinal_head_scores_once_and_returns_class_log_probabilities(hidden_units):
    model = build_model(hidden_units=hidden_units, head="ordinal", seed=0)
    assert tuple(model.output_layer.kernel.shape)[1] == 1 and model.ordinal_layer.num_classes == 4
    x = np.random.default_rng(1).normal(size=(7, 20)).astype("float32")
    log_p = keras.ops.convert_to_numpy(model(x))
    assert log_p.shape == (7, 4) and np.all(log_p <= 0)
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, atol=1e-5)


def test_saved_model_round_trips_config_and_weights(tmp_path):
    model = build_model(hidden_units=(16, 8), dropout=0.1, batch_norm=True, seed=0)
    x = np.random.default_rng(0).normal(size=(6, 20)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded, PhonePriceModel)
    assert loaded.hidden_units == (16, 8) and loaded.batch_norm and loaded.dropout == pytest.approx(0.1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)), expected, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"hidden_units": (0,)}, "hidden_units"), ({"hidden_units": (8, -1)}, "hidden_units"),
     ({"dropout": 1.0}, "dropout"), ({"num_classes": 1}, "num_classes"), ({"head": "sigmoid"}, "head")],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PhonePriceModel(**kwargs)


def test_saved_ordinal_model_round_trips(tmp_path):
    model = build_model(hidden_units=(8,), head="ordinal", seed=0)
    model.ordinal_layer.gaps.assign([0.3, -1.0])
    x = np.random.default_rng(0).normal(size=(6, 20)).astype("float32")
    expected = keras.ops.convert_to_numpy(model(x))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.head == "ordinal"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-6)
