"""kerasnn.losses against torch.nn losses: values and gradients on the current backend.

Run per backend: KERAS_BACKEND=torch|tensorflow|jax pytest tests/test_losses.py
"""

import os
import sys

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from parity_utils import BACKEND, assert_close, torch_value_and_grad, value_and_grad

from kerasnn import losses as kl

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True)
# A few fixed shapes: eager JAX compiles every primitive once per shape, so many
# distinct shapes would make the jax run slow without testing anything more.
CE_SHAPES = st.sampled_from([(1, 1), (1, 4), (5, 1), (5, 4), (7, 3)])
REDUCTIONS = ("mean", "sum", "none")
F = torch.nn.functional


def compare(kloss, tloss, y_true, y_pred, t_target=None, atol=1e-6, rtol=1e-5, seed=0):
    """Value and gradient w.r.t. y_pred of kerasnn ``kloss`` and torch ``tloss``.

    For reduction "none" the per-element output is compared and the gradient is a
    vector-Jacobian product with a random cotangent.
    """
    y_pred = np.asarray(y_pred, dtype="float32")
    if t_target is None:
        t_target = torch.tensor(np.asarray(y_true, dtype="float32"))
    if kloss.reduction == "none":
        t_out = tloss(torch.tensor(y_pred), t_target).numpy()
        cot = np.random.default_rng(seed).normal(size=t_out.shape).astype("float32")
        k_out = keras.ops.convert_to_numpy(kloss(y_true, y_pred))
        assert_close(k_out, t_out, atol, rtol, "per-element losses")

        def kfn(p):
            return keras.ops.sum(kloss(y_true, p) * keras.ops.convert_to_tensor(cot))

        def tfn(p):
            return (tloss(p, t_target) * torch.tensor(cot)).sum()
    else:

        def kfn(p):
            return kloss(y_true, p)

        def tfn(p):
            return tloss(p, t_target)

    k_value, k_grad = value_and_grad(kfn, y_pred)
    t_value, t_grad = torch_value_and_grad(tfn, y_pred)
    assert_close(k_value, t_value, atol, rtol, "loss value")
    assert_close(k_grad, t_grad, atol, rtol, "gradient w.r.t. y_pred")
    return k_value, t_value


# ----------------------------------------------------------------------------- CrossEntropyLoss


@SETTINGS
@given(
    shape=CE_SHAPES,
    seed=st.integers(0, 2**31 - 1),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.1, 0.37, 1.0]),
    reduction=st.sampled_from(REDUCTIONS),
    scale=st.sampled_from([1.0, 10.0]),
    ignore_index=st.sampled_from([-100, 0, 2]),
)
def test_cross_entropy_indices(shape, seed, weighted, smoothing, reduction, scale, ignore_index):
    n, c = shape
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, c)) * scale).astype("float32")
    target = rng.integers(0, c, size=n)
    target[rng.random(n) < 0.3] = ignore_index
    weight = rng.uniform(0.1, 3.0, size=c).astype("float32") if weighted else None
    kloss = kl.CrossEntropyLoss(
        weight=weight, ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing
    )
    tloss = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=smoothing,
    )
    compare(kloss, tloss, target, logits, t_target=torch.tensor(target))


@SETTINGS
@given(
    shape=CE_SHAPES,
    seed=st.integers(0, 2**31 - 1),
    weighted=st.booleans(),
    smoothing=st.sampled_from([0.0, 0.2]),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_cross_entropy_probabilities(shape, seed, weighted, smoothing, reduction):
    n, c = shape
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c)).astype("float32") * 3
    probs = rng.dirichlet(np.ones(c), size=n).astype("float32")
    weight = rng.uniform(0.1, 3.0, size=c).astype("float32") if weighted else None
    kloss = kl.CrossEntropyLoss(weight=weight, reduction=reduction, label_smoothing=smoothing)
    tloss = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    compare(kloss, tloss, probs, logits)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [30.0, 1e4, 1e30])
def test_cross_entropy_extreme_logits(reduction, scale):
    logits = np.array([[scale, 0.0, -scale], [-scale, scale, 0.0], [0.0, 0.0, 0.0]], "float32")
    target = np.array([2, 1, 0])
    weight = np.array([0.5, 2.0, 1.0], "float32")
    for kw in ({}, {"label_smoothing": 0.1}, {"weight": weight, "label_smoothing": 0.3}):
        tkw = dict(kw, weight=torch.tensor(kw["weight"])) if "weight" in kw else kw
        value, _ = compare(
            kl.CrossEntropyLoss(reduction=reduction, **kw),
            torch.nn.CrossEntropyLoss(reduction=reduction, **tkw),
            target,
            logits,
            t_target=torch.tensor(target),
        )
        assert np.all(np.isfinite(value))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw", [{}, {"label_smoothing": 0.2}, {"weight": [1.0, 2.0, 3.0], "label_smoothing": 0.2}]
)
def test_cross_entropy_every_target_ignored(reduction, kw):
    logits = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    target = np.full(4, -100)
    tkw = dict(kw, weight=torch.tensor(kw["weight"])) if "weight" in kw else kw
    value, t_value = compare(
        kl.CrossEntropyLoss(reduction=reduction, **kw),
        torch.nn.CrossEntropyLoss(reduction=reduction, **tkw),
        target,
        logits,
        t_target=torch.tensor(target),
    )
    if reduction == "mean":
        assert np.isnan(value) and np.isnan(t_value)


def test_cross_entropy_single_sample_and_float_indices():
    logits = np.array([[0.3, -1.2, 2.0, 0.0]], "float32")
    for target in (np.array([2]), np.array([2.0], "float32")):
        compare(
            kl.CrossEntropyLoss(label_smoothing=0.1),
            torch.nn.CrossEntropyLoss(label_smoothing=0.1),
            target,
            logits,
            t_target=torch.tensor([2]),
        )


# ----------------------------------------------------------------------------- BCE


@SETTINGS
@given(
    shape=st.sampled_from([(1,), (5,), (3, 4), (2, 3, 2)]),
    seed=st.integers(0, 2**31 - 1),
    weighted=st.booleans(),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_bce_random(shape, seed, weighted, reduction):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.001, 0.999, size=shape).astype("float32")
    y = rng.uniform(0, 1, size=shape).astype("float32")
    y[rng.random(shape) < 0.5] = 1.0
    weight = rng.uniform(0.1, 2, size=shape[-1:]).astype("float32") if weighted else None
    compare(
        kl.BCELoss(weight=weight, reduction=reduction),
        torch.nn.BCELoss(weight=None if weight is None else torch.tensor(weight), reduction=reduction),
        y,
        p,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_at_zero_and_one(reduction):
    p = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1e-30, 1 - 1e-7, 0.5], "float32")
    y = np.array([0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 1.0, 0.0, 0.5], "float32")
    value, _ = compare(kl.BCELoss(reduction=reduction), torch.nn.BCELoss(reduction=reduction), y, p)
    assert np.all(np.isfinite(value))


def test_bce_gradient_with_respect_to_target_is_torchs():
    p = np.array([0.2, 0.7, 0.5], "float32")
    y = np.array([0.3, 0.9, 0.0], "float32")
    _, k_grad = value_and_grad(lambda t: kl.BCELoss(reduction="sum")(t, p), y)
    _, t_grad = torch_value_and_grad(lambda t: F.binary_cross_entropy(torch.tensor(p), t, reduction="sum"), y)
    assert_close(k_grad, t_grad, what="d loss / d y_true")


@SETTINGS
@given(
    shape=st.sampled_from([(1,), (6,), (3, 4)]),
    seed=st.integers(0, 2**31 - 1),
    weighted=st.booleans(),
    pos_weighted=st.booleans(),
    scale=st.sampled_from([1.0, 20.0]),
    reduction=st.sampled_from(REDUCTIONS),
)
def test_bce_with_logits_random(shape, seed, weighted, pos_weighted, scale, reduction):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=shape) * scale).astype("float32")
    y = rng.uniform(0, 1, size=shape).astype("float32")
    weight = rng.uniform(0.1, 2, size=shape).astype("float32") if weighted else None
    pos_weight = rng.uniform(0.1, 4, size=shape[-1:]).astype("float32") if pos_weighted else None
    compare(
        kl.BCEWithLogitsLoss(weight=weight, reduction=reduction, pos_weight=pos_weight),
        torch.nn.BCEWithLogitsLoss(
            weight=None if weight is None else torch.tensor(weight),
            reduction=reduction,
            pos_weight=None if pos_weight is None else torch.tensor(pos_weight),
        ),
        y,
        x,
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_extremes(reduction):
    x = np.array([-1e4, -100.0, -20.0, 0.0, 0.0, 20.0, 100.0, 1e4], "float32")
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0], "float32")
    pos_weight = np.array([3.0], "float32")
    value, _ = compare(
        kl.BCEWithLogitsLoss(reduction=reduction, pos_weight=pos_weight),
        torch.nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.tensor(pos_weight)),
        y,
        x,
        rtol=1e-5,
    )
    assert np.all(np.isfinite(value))


# ----------------------------------------------------------------------------- regression


@SETTINGS
@given(
    shape=st.sampled_from([(1,), (7,), (3, 4)]),
    seed=st.integers(0, 2**31 - 1),
    reduction=st.sampled_from(REDUCTIONS),
    which=st.sampled_from(["l1", "mse", "smooth", "huber"]),
    param=st.sampled_from([0.0, 0.25, 1.0, 2.5]),
)
def test_regression_losses_random(shape, seed, reduction, which, param):
    rng = np.random.default_rng(seed)
    pred = (rng.normal(size=shape) * 2).astype("float32")
    true = (rng.normal(size=shape) * 2).astype("float32")
    true.flat[0] = pred.flat[0]  # d = 0 exactly: gradient sign(0) = 0
    if which == "l1":
        pair = kl.L1Loss(reduction=reduction), torch.nn.L1Loss(reduction=reduction)
    elif which == "mse":
        pair = kl.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction)
    elif which == "smooth":
        pair = kl.SmoothL1Loss(reduction, beta=param), torch.nn.SmoothL1Loss(reduction=reduction, beta=param)
    else:
        delta = param or 1.0
        pair = kl.HuberLoss(reduction, delta=delta), torch.nn.HuberLoss(reduction=reduction, delta=delta)
    compare(*pair, true, pred)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
def test_smooth_l1_and_huber_ties(reduction, threshold):
    # |d| exactly at the threshold, on both sides of zero, and around it.
    true = np.zeros(7, "float32")
    pred = np.array(
        [threshold, -threshold, 0.0, threshold * 0.5, -threshold * 2, threshold + 0.25, 1e-3], "float32"
    )
    compare(
        kl.SmoothL1Loss(reduction, beta=threshold),
        torch.nn.SmoothL1Loss(reduction=reduction, beta=threshold),
        true,
        pred,
    )
    compare(
        kl.HuberLoss(reduction, delta=threshold),
        torch.nn.HuberLoss(reduction=reduction, delta=threshold),
        true,
        pred,
    )


# ----------------------------------------------------------------------------- sample_weight


def test_sample_weight_multiplies_per_element_losses_before_torch_reduction():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 4)).astype("float32")
    target = np.array([0, 3, -100, 2, 1, 1])
    weight = np.array([1.0, 2.0, 0.5, 1.5], "float32")
    sw = rng.uniform(0, 2, size=6).astype("float32")
    t_none = F.cross_entropy(
        torch.tensor(logits), torch.tensor(target), weight=torch.tensor(weight), reduction="none"
    )
    kept = target != -100
    divisor = weight[target[kept]].sum()
    expected_mean = (t_none * torch.tensor(sw)).sum().item() / divisor
    loss = kl.CrossEntropyLoss(weight=weight)
    assert_close(keras.ops.convert_to_numpy(loss(target, logits, sample_weight=sw)), expected_mean)
    assert_close(
        keras.ops.convert_to_numpy(loss(target, logits, sample_weight=sw[:, None])), expected_mean
    )  # [N, 1] is squeezed
    # ones change nothing
    assert_close(
        keras.ops.convert_to_numpy(loss(target, logits, sample_weight=np.ones(6, "float32"))),
        F.cross_entropy(torch.tensor(logits), torch.tensor(target), weight=torch.tensor(weight)).item(),
    )
    # elementwise loss, one weight per row
    pred = rng.normal(size=(6, 3)).astype("float32")
    true = rng.normal(size=(6, 3)).astype("float32")
    t_none = F.mse_loss(torch.tensor(pred), torch.tensor(true), reduction="none") * torch.tensor(sw)[:, None]
    assert_close(keras.ops.convert_to_numpy(kl.MSELoss()(true, pred, sample_weight=sw)), t_none.mean().item())
    assert_close(keras.ops.convert_to_numpy(kl.MSELoss("none")(true, pred, sample_weight=sw)), t_none.numpy())


# ----------------------------------------------------------------------------- bad input


def _raises(match, fn):
    with pytest.raises(ValueError, match=match):
        fn()


def test_bad_arguments_raise_value_error_naming_them():
    logits = np.zeros((3, 4), "float32")
    _raises("reduction", lambda: kl.CrossEntropyLoss(reduction="avg"))
    _raises("reduction", lambda: kl.MSELoss(reduction="sum_over_batch_size"))
    _raises("label_smoothing", lambda: kl.CrossEntropyLoss(label_smoothing=1.5))
    _raises("beta", lambda: kl.SmoothL1Loss(beta=-1.0))
    _raises("delta", lambda: kl.HuberLoss(delta=0.0))
    _raises("weight", lambda: kl.CrossEntropyLoss(weight=[[1.0, 2.0]]))
    _raises("ignore_index", lambda: kl.CrossEntropyLoss(ignore_index=1.5))
    _raises(
        r"weight.*one entry per class \(4", lambda: kl.CrossEntropyLoss(weight=[1.0, 2.0])([0, 1, 2], logits)
    )
    _raises(r"y_pred.*\[N, C\]", lambda: kl.CrossEntropyLoss()([0], np.zeros(4, "float32")))
    _raises(r"y_true.*\[N\] = \[3\]", lambda: kl.CrossEntropyLoss()([0, 1], logits))
    _raises(r"y_true.*\[N\]", lambda: kl.CrossEntropyLoss()(np.zeros((3, 1, 1)), logits))
    _raises(r"y_true.*probabilities", lambda: kl.CrossEntropyLoss()(np.zeros((3, 2), "float32"), logits))
    _raises(r"\[0, 4\).*\[4\]", lambda: kl.CrossEntropyLoss()([0, 4, 1], logits))
    _raises(r"\[0, 4\).*-1", lambda: kl.CrossEntropyLoss()([0, -1, 1], logits))
    _raises("integers", lambda: kl.CrossEntropyLoss()(np.array([0.5, 1.0, 2.0], "float32"), logits))
    _raises(
        "ignore_index", lambda: kl.CrossEntropyLoss(ignore_index=1)(np.full((3, 4), 0.25, "float32"), logits)
    )
    _raises("y_true", lambda: kl.MSELoss()(np.zeros((3,), "float32"), np.zeros((3, 1), "float32")))
    _raises("y_true", lambda: kl.BCELoss()(np.zeros((2, 3), "float32"), np.zeros((3, 2), "float32")))
    _raises(
        r"y_pred.*\[0, 1\]", lambda: kl.BCELoss()(np.zeros(2, "float32"), np.array([0.5, 1.5], "float32"))
    )
    _raises(
        "weight",
        lambda: kl.BCELoss(weight=[1.0, 2.0])(np.zeros((2, 3), "float32"), np.zeros((2, 3), "float32")),
    )
    _raises("pos_weight", lambda: kl.BCEWithLogitsLoss(pos_weight=[1.0, 2.0])(np.zeros(3), np.zeros(3)))
    _raises(
        "sample_weight", lambda: kl.MSELoss()(np.zeros((3, 2)), np.zeros((3, 2)), sample_weight=np.ones(2))
    )


def test_shape_checks_also_inside_compiled_graphs():
    """Inside tf.function / jax.jit only shape checks run (values are not concrete)."""
    loss = kl.CrossEntropyLoss()
    logits = np.zeros((3, 4), "float32")
    if BACKEND == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(lambda t, p: loss(t, p))
    elif BACKEND == "jax":
        import jax

        compiled = jax.jit(lambda t, p: loss(t, p))
    else:
        pytest.skip("the torch backend runs eagerly: value checks always run")
    assert np.isfinite(keras.ops.convert_to_numpy(compiled(np.array([0, 1, 3]), logits)))
    _raises("y_true", lambda: compiled(np.array([0, 1]), logits))
    # out of range: not checkable in a graph; gives NaN instead of a backend error
    assert np.isnan(keras.ops.convert_to_numpy(compiled(np.array([0, 9, 1]), logits)))
    none_loss = kl.CrossEntropyLoss(reduction="none", ignore_index=-1)
    out = keras.ops.convert_to_numpy(
        (tf.function if BACKEND == "tensorflow" else jax.jit)(lambda t, p: none_loss(t, p))(
            np.array([0, -1, -5]), logits
        )
    )
    assert out[1] == 0.0 and np.isfinite(out[0]) and np.isnan(out[2])


# ----------------------------------------------------------------------------- Keras integration


ALL_LOSSES = [
    kl.CrossEntropyLoss(weight=[1.0, 2.0, 0.5], ignore_index=1, reduction="sum", label_smoothing=0.1),
    kl.BCELoss(weight=[0.5, 2.0]),
    kl.BCEWithLogitsLoss(pos_weight=[2.0, 0.5], reduction="none"),
    kl.L1Loss("sum"),
    kl.MSELoss(),
    kl.SmoothL1Loss(beta=0.3),
    kl.HuberLoss(delta=2.0),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda x: type(x).__name__)
def test_config_round_trip(loss):
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss) and restored.get_config() == config


def _torch_copy(keras_linear):
    kernel, bias = keras_linear.get_weights()
    layer = torch.nn.Linear(kernel.shape[0], kernel.shape[1])
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(kernel.T))
        layer.bias.copy_(torch.tensor(bias))
    return layer


FIT_CASES = {
    "cross_entropy": (
        lambda: kl.CrossEntropyLoss(weight=[1.0, 2.0, 0.5], label_smoothing=0.1),
        lambda: torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1),
        None,
    ),
    "bce_on_sigmoid": (lambda: kl.BCELoss(), lambda: torch.nn.BCELoss(), "sigmoid"),
    "smooth_l1": (lambda: kl.SmoothL1Loss(beta=0.5), lambda: torch.nn.SmoothL1Loss(beta=0.5), None),
}


@pytest.mark.parametrize("case", list(FIT_CASES))
def test_fit_step_matches_torch_sgd_step(case, tmp_path):
    from kerasnn.layers import Linear

    make_loss, make_torch_loss, activation = FIT_CASES[case]
    rng = np.random.default_rng(7)
    x = rng.normal(size=(8, 4)).astype("float32")
    if case == "cross_entropy":
        y = rng.integers(0, 3, size=8)
        t_y = torch.tensor(y)
    else:
        y = rng.uniform(0, 1, size=(8, 3)).astype("float32")
        t_y = torch.tensor(y)
    keras.utils.set_random_seed(0)
    linear = Linear(3, activation=activation)
    model = keras.Sequential([keras.Input((4,)), linear])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss=make_loss())
    t_linear = _torch_copy(linear)
    t_model = torch.nn.Sequential(t_linear, torch.nn.Sigmoid()) if activation else t_linear

    t_loss = make_torch_loss()(t_model(torch.tensor(x)), t_y)
    t_loss.backward()
    with torch.no_grad():
        for param in t_linear.parameters():
            param -= 0.5 * param.grad

    history = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert_close(history.history["loss"][0], t_loss.item(), what="fit() loss")
    kernel, bias = linear.get_weights()
    assert_close(kernel, t_linear.weight.detach().numpy().T, atol=1e-6, what="kernel after one step")
    assert_close(bias, t_linear.bias.detach().numpy(), atol=1e-6, what="bias after one step")

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.loss) is type(model.loss) and loaded.loss.get_config() == model.loss.get_config()
    assert_close(
        loaded.evaluate(x, y, batch_size=8, verbose=0), model.evaluate(x, y, batch_size=8, verbose=0)
    )
