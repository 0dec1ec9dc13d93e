"""kerasnn.layers against torch.nn: Linear, Dropout, BatchNorm1d on the current backend."""

import os
import sys

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from parity_utils import assert_close, torch_value_and_grad, value_and_grad, weighted_sum

from kerasnn.layers import BatchNorm1d, Dropout, Linear

SETTINGS = settings(max_examples=10, deadline=None, derandomize=True)


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ----------------------------------------------------------------------------- Linear


@pytest.mark.parametrize("fan_in,units", [(1, 3), (7, 2), (300, 50)])
def test_linear_init_is_torch_uniform(fan_in, units):
    keras.utils.set_random_seed(fan_in)
    layer = Linear(units)
    layer.build((None, fan_in))
    kernel, bias = layer.get_weights()
    torch_layer = torch.nn.Linear(fan_in, units)
    bound = 1.0 / np.sqrt(fan_in)
    assert kernel.shape == tuple(reversed(torch_layer.weight.shape)) and bias.shape == tuple(
        torch_layer.bias.shape
    )
    for name, mine, theirs in (("kernel", kernel, torch_layer.weight), ("bias", bias, torch_layer.bias)):
        theirs = theirs.detach().numpy()
        # torch's own parameters respect the bound; ours too, and use it (not a narrower range)
        assert np.abs(theirs).max() <= bound
        assert np.abs(mine).max() <= bound, name
    if kernel.size >= 1000:  # U(-b, b) has std b / sqrt(3)
        assert abs(kernel.std() - bound / np.sqrt(3)) < 0.05 * bound
        assert np.abs(kernel).max() > 0.95 * bound


def test_linear_forward_and_gradient_match_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4)).astype("float32")
    layer = Linear(3)
    layer.build((None, 4))
    torch_layer = torch.nn.Linear(4, 3)
    kernel, bias = layer.get_weights()
    with torch.no_grad():
        torch_layer.weight.copy_(torch.tensor(kernel.T))
        torch_layer.bias.copy_(torch.tensor(bias))
    cot = rng.normal(size=(5, 3)).astype("float32")
    k = value_and_grad(lambda t: weighted_sum(layer(t), cot), x)
    t = torch_value_and_grad(lambda t: (torch_layer(t) * torch.tensor(cot)).sum(), x)
    assert_close(k[0], t[0])
    assert_close(k[1], t[1], what="d/dx")


def test_linear_config_and_arguments():
    layer = Linear(4, use_bias=False, activation="relu", name="lin")
    config = layer.get_config()
    assert "kernel_initializer" not in config and config["use_bias"] is False
    clone = Linear.from_config(config)
    assert clone.units == 4 and clone.use_bias is False
    with pytest.raises(ValueError, match="kernel_initializer"):
        Linear(3, kernel_initializer="zeros")
    with pytest.raises(ValueError, match="units"):
        Linear(0)


# ----------------------------------------------------------------------------- Dropout


def test_dropout_p0_identity_and_eval_identity_like_torch():
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    torch_out = torch.nn.Dropout(p=0.0).train()(torch.tensor(x)).numpy()
    assert_close(np_(Dropout(p=0.0)(x, training=True)), torch_out)
    for p in (0.3, 1.0):
        assert_close(np_(Dropout(p)(x)), torch.nn.Dropout(p).eval()(torch.tensor(x)).numpy())
    assert_close(np_(Dropout(1.0)(x, training=True)), torch.nn.Dropout(1.0).train()(torch.tensor(x)).numpy())


@SETTINGS
@given(p=st.sampled_from([0.1, 0.5, 0.8]), seed=st.integers(0, 10_000))
def test_dropout_training_is_inverted_dropout(p, seed):
    x = np.random.default_rng(seed).uniform(1, 2, size=(2000,)).astype("float32")
    y = np_(Dropout(p, seed=seed)(x, training=True))
    kept = y != 0
    # kept values are x / (1 - p), as torch's (both scale by 1 / (1 - p))
    t = torch.nn.functional.dropout(torch.tensor(x), p=p, training=True).numpy()
    t_kept = t != 0
    assert_close(y[kept], x[kept] / np.float32(1 - p), rtol=1e-6)
    assert_close(t[t_kept], x[t_kept] / np.float32(1 - p), rtol=1e-6)
    assert abs((~kept).mean() - p) < 0.05


def test_dropout_arguments_and_config():
    with pytest.raises(ValueError, match="p"):
        Dropout(1.5)
    layer = Dropout(0.25, seed=3, name="d")
    clone = Dropout.from_config(layer.get_config())
    assert clone.p == 0.25 and clone.seed == 3


# ----------------------------------------------------------------------------- BatchNorm1d


def _torch_bn(features, **kw):
    return torch.nn.BatchNorm1d(features, **kw)


def _copy_affine(bn, tbn):
    gamma, beta = bn.get_weights()[:2]
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(gamma))
        tbn.bias.copy_(torch.tensor(beta))


@pytest.mark.parametrize("momentum", [0.1, 0.5])
@pytest.mark.parametrize("shape", [(8, 5), (2, 5), (4, 3, 5)])
def test_batchnorm_training_steps_then_eval(momentum, shape):
    rng = np.random.default_rng(1)
    features = shape[-1]
    bn = BatchNorm1d(momentum=momentum)
    bn.build(shape)
    bn.set_weights(
        [rng.uniform(0.5, 2, features), rng.normal(size=features), np.zeros(features), np.ones(features)]
    )
    tbn = _torch_bn(features, momentum=momentum)
    _copy_affine(bn, tbn)

    def to_torch(a):  # torch's BatchNorm1d takes [N, C] or [N, C, L]
        return torch.tensor(a if a.ndim == 2 else np.moveaxis(a, -1, 1))

    def from_torch(t):
        a = t.detach().numpy()
        return a if a.ndim == 2 else np.moveaxis(a, 1, -1)

    for step in range(4):
        x = rng.normal(2.0, 3.0, size=shape).astype("float32")
        cot = rng.normal(size=shape).astype("float32")

        def vjp(t, cot=cot):
            with keras.StatelessScope():  # the gradient pass must not move the running stats
                return weighted_sum(bn(t, training=True), cot)

        _, k_grad = value_and_grad(vjp, x)
        k_out = np_(bn(x, training=True))
        tbn.train()
        xt = to_torch(x).requires_grad_(True)
        out = tbn(xt)
        (t_grad,) = torch.autograd.grad((out * to_torch(cot)).sum(), xt)
        assert_close(k_out, from_torch(out), what=f"training output step {step}")
        assert_close(k_grad, from_torch(t_grad), what=f"d/dx step {step}")
        assert_close(bn.running_mean.numpy(), tbn.running_mean.numpy(), what=f"running_mean step {step}")
        assert_close(bn.running_var.numpy(), tbn.running_var.numpy(), what=f"running_var step {step}")
    x = rng.normal(2.0, 3.0, size=shape).astype("float32")
    tbn.eval()
    assert_close(np_(bn(x)), from_torch(tbn(to_torch(x))), what="eval output")
    assert_close(np_(bn(x, training=False)), from_torch(tbn(to_torch(x))), what="eval output")


def test_batchnorm_training_outputs_match_torch():
    rng = np.random.default_rng(2)
    bn, tbn = BatchNorm1d(eps=1e-3), _torch_bn(6, eps=1e-3)
    for _ in range(3):
        x = rng.normal(-1, 0.5, size=(16, 6)).astype("float32")
        assert_close(np_(bn(x, training=True)), tbn(torch.tensor(x)).detach().numpy())
    weights = bn.get_weights()
    assert [w.shape for w in weights] == [(6,)] * 4
    assert_close(weights[2], tbn.running_mean.numpy())
    assert_close(weights[3], tbn.running_var.numpy())
    assert [v.name for v in bn.weights] == ["gamma", "beta", "running_mean", "running_var"]


@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_without_running_stats_uses_batch_stats_in_eval(affine):
    rng = np.random.default_rng(3)
    bn = BatchNorm1d(affine=affine, track_running_stats=False)
    tbn = _torch_bn(4, affine=affine, track_running_stats=False).eval()
    x = rng.normal(5, 2, size=(10, 4)).astype("float32")
    assert_close(np_(bn(x)), tbn(torch.tensor(x)).detach().numpy())
    assert len(bn.get_weights()) == (2 if affine else 0)


def test_batchnorm_large_mean_small_std_is_stable():
    rng = np.random.default_rng(4)
    x = rng.normal(1e3, 0.1, size=(64, 3)).astype("float32")
    bn = BatchNorm1d()
    out = np_(bn(x, training=True))
    assert np.all(np.isfinite(out))
    exact = torch.nn.BatchNorm1d(3).double()(torch.tensor(x, dtype=torch.float64)).detach().numpy()
    torch32 = torch.nn.BatchNorm1d(3)(torch.tensor(x)).detach().numpy()
    # float32 rounding of x itself limits both: no worse than torch's own float32 result (+ margin)
    assert np.abs(out - exact).max() <= max(2 * np.abs(torch32 - exact).max(), 5e-3)
    assert np.all(np.isfinite(bn.running_var.numpy()))


def test_batchnorm_errors_and_config():
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(momentum=None)
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1d(momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        BatchNorm1d(eps=0)
    bn = BatchNorm1d()
    with pytest.raises(ValueError, match="more than 1 value"):
        bn(np.ones((1, 3), "float32"), training=True)
    with pytest.raises(ValueError, match=r"\[N, \.\.\., 3\]"):
        bn(np.ones((4, 5), "float32"))
    clone = BatchNorm1d.from_config(BatchNorm1d(momentum=0.2, eps=1e-4, affine=False).get_config())
    assert (clone.momentum, clone.eps, clone.affine, clone.track_running_stats) == (0.2, 1e-4, False, True)


def test_layers_in_a_saved_model(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            Linear(8),
            BatchNorm1d(momentum=0.3),
            keras.layers.ReLU(),
            Dropout(0.2),
            Linear(2),
        ]
    )
    x = np.random.default_rng(5).normal(size=(6, 4)).astype("float32")
    model(x, training=True)  # move the running statistics
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert_close(np_(loaded(x)), np_(model(x)))
    assert loaded.layers[1].momentum == 0.3 and loaded.layers[3].p == 0.2
