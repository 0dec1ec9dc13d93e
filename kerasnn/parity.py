"""Parity checks: kerasnn against torch, on the current Keras backend, as a report.

Each registered check computes a technique with kerasnn and with torch itself (and,
where Keras has a look-alike, with that too) on fixed inputs and returns
:class:`ParityResult` rows: the largest absolute difference to torch, for values and
for gradients (taken with the backend's own autodiff, as ``fit()`` does).

Run ``python -m kerasnn.parity`` (a table) or ``python -m kerasnn.parity --json``
(rows with the backend name); ``KERAS_BACKEND`` picks the backend.
``benchmarks/parity_report.py`` runs it on every backend. Other modules add checks
with :func:`register` (``kerasnn.parity_optimizers`` is imported by
:func:`run_checks` when it exists). Needs PyTorch (``pip install 'kerasnn[torch]'``).

Differences are absolute; where torch itself gives NaN (every target ignored) an
equal NaN counts as 0 and NaN against a number as ``inf``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np

__all__ = ["CHECKS", "ParityResult", "main", "max_abs_diff", "register", "run_checks", "value_and_grad"]


@dataclass
class ParityResult:
    technique: str  # e.g. "CrossEntropyLoss (weights+smoothing)"
    max_abs_diff: float  # kerasnn vs torch
    keras_builtin: str | None = None  # e.g. "keras.losses.SparseCategoricalCrossentropy"
    keras_max_abs_diff: float | None = None  # Keras' look-alike vs torch, where one exists


CHECKS: list[Callable[[], list[ParityResult]]] = []


def register(fn):
    """Add a check (a function returning a list of :class:`ParityResult`) to :data:`CHECKS`."""
    CHECKS.append(fn)
    return fn


def _torch():
    try:
        import torch
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "kerasnn.parity compares kerasnn with PyTorch and needs it installed: "
            "pip install 'kerasnn[torch]'",
            name=error.name,
        ) from error
    torch.set_num_threads(1)
    return torch


# ----------------------------------------------------------------------------- helpers


def max_abs_diff(actual, expected) -> float:
    """Largest |actual - expected|; equal NaNs/infs count 0, NaN against a number counts inf."""
    a = np.asarray(actual, dtype="float64")
    b = np.broadcast_to(np.asarray(expected, dtype="float64"), a.shape)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.abs(a - b))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()) if diff.size else 0.0


def value_and_grad(fn, x):
    """Value of the scalar ``fn(x)`` (keras.ops) and its gradient w.r.t. ``x``, as NumPy arrays.

    Uses torch.autograd, ``tf.GradientTape`` or ``jax.value_and_grad`` according to the backend.
    """
    x = np.asarray(x, dtype="float32")
    backend = keras.backend.backend()
    if backend == "torch":
        torch = _torch()
        tensor = torch.tensor(x, requires_grad=True)
        value = fn(tensor)
        (grad,) = torch.autograd.grad(value, tensor)
        return value.detach().cpu().numpy(), grad.detach().cpu().numpy()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        return value.numpy(), tape.gradient(value, tensor).numpy()
    if backend == "jax":
        import jax

        value, grad = jax.value_and_grad(fn)(jax.numpy.asarray(x))
        return np.asarray(value), np.asarray(grad)
    raise NotImplementedError(f"value_and_grad: unsupported backend {backend!r}")


def _torch_value_and_grad(fn, x):
    torch = _torch()
    tensor = torch.tensor(np.asarray(x, dtype="float32"), requires_grad=True)
    value = fn(tensor)
    (grad,) = torch.autograd.grad(value, tensor)
    return value.detach().numpy(), grad.numpy()


def _np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _loss_rows(technique, kloss, tloss, y_true, y_pred, t_target, builtin=None, kfn_builtin=None):
    """Value and gradient rows for a loss; ``kfn_builtin(p)`` computes Keras' look-alike."""
    torch = _torch()
    y_pred = np.asarray(y_pred, dtype="float32")
    if kloss.reduction == "none":
        t_shape = tuple(tloss(torch.tensor(y_pred), t_target).shape)
        cot = np.random.default_rng(0).normal(size=t_shape).astype("float32")

        def reduce_k(v):
            return keras.ops.sum(v * keras.ops.convert_to_tensor(cot))

        def reduce_t(v):
            return (v * torch.tensor(cot)).sum()
    else:

        def reduce_k(v):
            return v

        def reduce_t(v):
            return v

    k_value, k_grad = value_and_grad(lambda p: reduce_k(kloss(y_true, p)), y_pred)
    t_value, t_grad = _torch_value_and_grad(lambda p: reduce_t(tloss(p, t_target)), y_pred)
    b_value_diff = b_grad_diff = None
    if kfn_builtin is not None:
        b_value, b_grad = value_and_grad(lambda p: reduce_k(kfn_builtin(p)), y_pred)
        b_value_diff, b_grad_diff = max_abs_diff(b_value, t_value), max_abs_diff(b_grad, t_grad)
    return [
        ParityResult(f"{technique}: value", max_abs_diff(k_value, t_value), builtin, b_value_diff),
        ParityResult(f"{technique}: grad", max_abs_diff(k_grad, t_grad), builtin, b_grad_diff),
    ]


# ----------------------------------------------------------------------------- losses


@register
def check_cross_entropy() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.losses import CrossEntropyLoss

    rng = np.random.default_rng(0)
    n, c = 16, 5
    logits = rng.normal(size=(n, c)).astype("float32") * 2
    target = rng.integers(0, c, size=n)
    t_target = torch.tensor(target)
    weight = rng.uniform(0.2, 3.0, size=c).astype("float32")
    one_hot = np.eye(c, dtype="float32")[target]
    scce = "keras.losses.SparseCategoricalCrossentropy(from_logits=True)"
    rows = _loss_rows(
        "CrossEntropyLoss",
        CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(),
        target,
        logits,
        t_target,
        scce,
        lambda p: keras.losses.SparseCategoricalCrossentropy(from_logits=True)(target, p),
    )
    rows += _loss_rows(
        "CrossEntropyLoss (weights+smoothing 0.1)",
        CrossEntropyLoss(weight=weight, label_smoothing=0.1),
        torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1),
        target,
        logits,
        t_target,
        "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), sample_weight=w[y]",
        lambda p: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
            one_hot, p, sample_weight=weight[target]
        ),
    )
    ignored = target.copy()
    ignored[::3] = -100
    rows += _loss_rows(
        "CrossEntropyLoss (ignore_index)",
        CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(),
        ignored,
        logits,
        torch.tensor(ignored),
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)",
        lambda p: keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)(ignored, p),
    )
    all_ignored = np.full(n, -100)
    rows += _loss_rows(
        "CrossEntropyLoss (every target ignored: nan)",
        CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(),
        all_ignored,
        logits,
        torch.tensor(all_ignored),
        "keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)",
        lambda p: keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-100)(
            all_ignored, p
        ),
    )
    probs = rng.dirichlet(np.ones(c), size=n).astype("float32")
    rows += _loss_rows(
        "CrossEntropyLoss (probability targets, weights)",
        CrossEntropyLoss(weight=weight),
        torch.nn.CrossEntropyLoss(weight=torch.tensor(weight)),
        probs,
        logits,
        torch.tensor(probs),
        "keras.losses.CategoricalCrossentropy(from_logits=True), sample_weight=probs@w",
        lambda p: keras.losses.CategoricalCrossentropy(from_logits=True)(
            probs, p, sample_weight=probs @ weight
        ),
    )
    extreme = np.array([[1e4, 0, -1e4, 0, 0], [0, 30, -30, 0, 0], [-1e4, 0, 0, 0, 1e4]], "float32")
    ext_target = np.array([2, 1, 4])
    rows += _loss_rows(
        "CrossEntropyLoss (extreme logits 1e4)",
        CrossEntropyLoss(),
        torch.nn.CrossEntropyLoss(),
        ext_target,
        extreme,
        torch.tensor(ext_target),
        scce,
        lambda p: keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ext_target, p),
    )
    rows += _loss_rows(
        "CrossEntropyLoss (reduction='none')",
        CrossEntropyLoss(reduction="none", label_smoothing=0.2),
        torch.nn.CrossEntropyLoss(reduction="none", label_smoothing=0.2),
        target,
        logits,
        t_target,
        "keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2, reduction=None)",
        lambda p: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2, reduction=None)(
            one_hot, p
        ),
    )
    return rows


@register
def check_binary_cross_entropy() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.losses import BCELoss, BCEWithLogitsLoss

    rng = np.random.default_rng(1)
    p = rng.uniform(0.01, 0.99, size=(8, 3)).astype("float32")
    y = (rng.random((8, 3)) < 0.5).astype("float32")
    bce = "keras.losses.BinaryCrossentropy()"
    rows = _loss_rows(
        "BCELoss",
        BCELoss(),
        torch.nn.BCELoss(),
        y,
        p,
        torch.tensor(y),
        bce,
        lambda q: keras.losses.BinaryCrossentropy()(y, q),
    )
    p_edge = np.array([[0.0, 1.0, 0.0], [1.0, 0.5, 1e-30]], "float32")
    y_edge = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 1.0]], "float32")
    rows += _loss_rows(
        "BCELoss (p exactly 0 and 1)",
        BCELoss(),
        torch.nn.BCELoss(),
        y_edge,
        p_edge,
        torch.tensor(y_edge),
        bce,
        lambda q: keras.losses.BinaryCrossentropy()(y_edge, q),
    )
    x = (rng.normal(size=(8, 3)) * 5).astype("float32")
    x[0] = [-100.0, 0.0, 100.0]
    rows += _loss_rows(
        "BCEWithLogitsLoss",
        BCEWithLogitsLoss(),
        torch.nn.BCEWithLogitsLoss(),
        y,
        x,
        torch.tensor(y),
        "keras.losses.BinaryCrossentropy(from_logits=True)",
        lambda q: keras.losses.BinaryCrossentropy(from_logits=True)(y, q),
    )
    pos_weight = np.array([0.5, 2.0, 4.0], "float32")
    rows += _loss_rows(
        "BCEWithLogitsLoss (pos_weight)",
        BCEWithLogitsLoss(pos_weight=pos_weight),
        torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight)),
        y,
        x,
        torch.tensor(y),
    )
    return rows


@register
def check_regression_losses() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.losses import HuberLoss, L1Loss, MSELoss, SmoothL1Loss

    rng = np.random.default_rng(2)
    pred = (rng.normal(size=(8, 3)) * 2).astype("float32")
    true = (rng.normal(size=(8, 3)) * 2).astype("float32")
    true[0] = pred[0]  # d = 0
    true[1] = pred[1] - np.float32(0.5)  # |d| = 0.5 exactly where representable
    true[2] = [0.0, 0.0, 0.0]
    pred[2] = [1.0, -1.0, 0.5]  # |d| = 1 and 0.5: ties at beta / delta
    t_true = torch.tensor(true)
    rows = _loss_rows(
        "L1Loss",
        L1Loss(),
        torch.nn.L1Loss(),
        true,
        pred,
        t_true,
        "keras.losses.MeanAbsoluteError()",
        lambda p: keras.losses.MeanAbsoluteError()(true, p),
    )
    rows += _loss_rows(
        "MSELoss",
        MSELoss(),
        torch.nn.MSELoss(),
        true,
        pred,
        t_true,
        "keras.losses.MeanSquaredError()",
        lambda p: keras.losses.MeanSquaredError()(true, p),
    )
    rows += _loss_rows(
        "SmoothL1Loss (beta=0.5, ties)",
        SmoothL1Loss(beta=0.5),
        torch.nn.SmoothL1Loss(beta=0.5),
        true,
        pred,
        t_true,
        "keras.losses.Huber(delta=0.5)",
        lambda p: keras.losses.Huber(delta=0.5)(true, p),
    )
    rows += _loss_rows(
        "HuberLoss (delta=1, ties)",
        HuberLoss(delta=1.0),
        torch.nn.HuberLoss(delta=1.0),
        true,
        pred,
        t_true,
        "keras.losses.Huber(delta=1.0)",
        lambda p: keras.losses.Huber(delta=1.0)(true, p),
    )
    return rows


# ----------------------------------------------------------------------------- layers


@register
def check_batchnorm() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.layers import BatchNorm1d

    rng = np.random.default_rng(3)
    features, steps = 6, 5
    ours = BatchNorm1d()
    builtin = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    name = "keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)"
    reference = torch.nn.BatchNorm1d(features)
    train_diff = [0.0, 0.0]
    for _ in range(steps):
        x = rng.normal(2.0, 3.0, size=(16, features)).astype("float32")
        expected = reference(torch.tensor(x)).detach().numpy()
        train_diff[0] = max(train_diff[0], max_abs_diff(_np(ours(x, training=True)), expected))
        train_diff[1] = max(train_diff[1], max_abs_diff(_np(builtin(x, training=True)), expected))
    stats = [
        max(
            max_abs_diff(_np(mean), reference.running_mean.numpy()),
            max_abs_diff(_np(var), reference.running_var.numpy()),
        )
        for mean, var in (
            (ours.running_mean, ours.running_var),
            (builtin.moving_mean, builtin.moving_variance),
        )
    ]
    x = rng.normal(2.0, 3.0, size=(16, features)).astype("float32")
    reference.eval()
    expected = reference(torch.tensor(x)).detach().numpy()
    evals = [max_abs_diff(_np(ours(x)), expected), max_abs_diff(_np(builtin(x)), expected)]

    # input gradient in training mode (stateless: the running statistics do not move)
    cot = rng.normal(size=(16, features)).astype("float32")
    reference.train()

    def grad_of(layer):
        def fn(t):
            with keras.StatelessScope():
                return keras.ops.sum(layer(t, training=True) * keras.ops.convert_to_tensor(cot))

        return value_and_grad(fn, x)[1]

    t_grad = _torch_value_and_grad(lambda t: (reference(t) * torch.tensor(cot)).sum(), x)[1]
    grads = [max_abs_diff(grad_of(ours), t_grad), max_abs_diff(grad_of(builtin), t_grad)]

    # mean 1e3, std 0.1: against torch in float64 (float32 rounding of x limits everyone)
    big = rng.normal(1e3, 0.1, size=(64, 3)).astype("float32")
    exact = torch.nn.BatchNorm1d(3).double()(torch.tensor(big, dtype=torch.float64)).detach().numpy()
    big_diffs = [
        max_abs_diff(_np(BatchNorm1d()(big, training=True)), exact),
        max_abs_diff(
            _np(keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(big, training=True)), exact
        ),
    ]
    torch32 = max_abs_diff(torch.nn.BatchNorm1d(3)(torch.tensor(big)).detach().numpy(), exact)
    return [
        ParityResult(f"BatchNorm1d training outputs ({steps} steps)", train_diff[0], name, train_diff[1]),
        ParityResult(f"BatchNorm1d running stats after {steps} steps", stats[0], name, stats[1]),
        ParityResult("BatchNorm1d eval outputs", evals[0], name, evals[1]),
        ParityResult("BatchNorm1d input grad (training)", grads[0], name, grads[1]),
        ParityResult(
            f"BatchNorm1d mean 1e3 std 0.1 (vs torch float64; torch float32: {torch32:.1e})",
            big_diffs[0],
            name,
            big_diffs[1],
        ),
    ]


@register
def check_linear() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.layers import Linear

    fan_in, units = 64, 10
    bound = 1.0 / math.sqrt(fan_in)
    keras.utils.set_random_seed(0)
    ours = Linear(units)
    ours.build((None, fan_in))
    dense = keras.layers.Dense(units)
    dense.build((None, fan_in))

    def excess(layer):
        return max(0.0, max(float(np.abs(w).max()) for w in layer.get_weights()) - bound)

    rows = [
        ParityResult(
            "Linear init: max |w| beyond torch bound 1/sqrt(fan_in)",
            excess(ours),
            "keras.layers.Dense",
            excess(dense),
        )
    ]
    reference = torch.nn.Linear(fan_in, units)
    kernel, bias = ours.get_weights()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(kernel.T))
        reference.bias.copy_(torch.tensor(bias))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, fan_in)).astype("float32")
    cot = rng.normal(size=(8, units)).astype("float32")
    k_value, k_grad = value_and_grad(lambda t: keras.ops.sum(ours(t) * keras.ops.convert_to_tensor(cot)), x)
    t_value, t_grad = _torch_value_and_grad(lambda t: (reference(t) * torch.tensor(cot)).sum(), x)
    rows.append(
        ParityResult(
            "Linear forward + input grad (same weights)",
            max(max_abs_diff(k_value, t_value), max_abs_diff(k_grad, t_grad)),
        )
    )
    return rows


@register
def check_dropout() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.layers import Dropout

    x = np.random.default_rng(5).uniform(1, 2, size=(32, 8)).astype("float32")
    expected = torch.nn.Dropout(0.0).train()(torch.tensor(x)).numpy()
    rows = [
        ParityResult(
            "Dropout p=0 (training)",
            max_abs_diff(_np(Dropout(0.0)(x, training=True)), expected),
            "keras.layers.Dropout(0.0)",
            max_abs_diff(_np(keras.layers.Dropout(0.0)(x, training=True)), expected),
        )
    ]
    # p = 0.5: masks differ by design; kept values must be x / (1 - p) as torch's
    t_out = torch.nn.functional.dropout(torch.tensor(x), p=0.5, training=True).numpy()
    t_scale = t_out[t_out != 0] / x[t_out != 0]

    def scale_diff(out):
        kept = out != 0
        return max_abs_diff(out[kept] / x[kept], float(np.median(t_scale)))

    rows.append(
        ParityResult(
            "Dropout p=0.5 (training): kept values scale 1/(1-p)",
            scale_diff(_np(Dropout(0.5, seed=1)(x, training=True))),
            "keras.layers.Dropout(0.5)",
            scale_diff(_np(keras.layers.Dropout(0.5, seed=1)(x, training=True))),
        )
    )
    return rows


@register
def check_interop() -> list[ParityResult]:
    torch = _torch()
    from kerasnn.interop import keras_to_torch, torch_to_keras
    from kerasnn.layers import BatchNorm1d, Linear

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    x = np.random.default_rng(6).normal(size=(16, 5)).astype("float32")
    net(torch.tensor(x))  # one training step: non-trivial running statistics
    net.eval()
    model = keras.Sequential([keras.Input((5,)), Linear(8), BatchNorm1d(), keras.layers.ReLU(), Linear(3)])
    torch_to_keras(net, model)
    with torch.no_grad():
        expected = net(torch.tensor(x)).numpy()
    forward = max_abs_diff(_np(model(x)), expected)
    back = keras_to_torch(model, net.state_dict())
    round_trip = max(max_abs_diff(back[k].numpy(), v.numpy()) for k, v in net.state_dict().items())
    return [
        ParityResult("interop torch -> Keras: eval outputs", forward),
        ParityResult("interop torch -> Keras -> torch: state_dict", round_trip),
    ]


@register
def check_fit_step() -> list[ParityResult]:
    """Three fit() steps (compiled on tensorflow/jax) vs a torch loop: parameters after."""
    torch = _torch()
    from kerasnn.interop import keras_to_torch
    from kerasnn.layers import BatchNorm1d, Linear
    from kerasnn.losses import CrossEntropyLoss

    rng = np.random.default_rng(7)
    x = rng.normal(size=(24, 5)).astype("float32")
    y = rng.integers(0, 3, size=24)
    weight = [1.0, 2.0, 0.5]
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((5,)), Linear(8), BatchNorm1d(), keras.layers.ReLU(), Linear(3)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=CrossEntropyLoss(weight=weight, label_smoothing=0.1),
    )
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )
    keras_to_torch(model, net)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weight), label_smoothing=0.1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    for start in range(0, 24, 8):
        optimizer.zero_grad()
        loss_fn(net(torch.tensor(x[start : start + 8])), torch.tensor(y[start : start + 8])).backward()
        optimizer.step()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    after = keras_to_torch(model, net.state_dict())
    diff = max(
        max_abs_diff(after[k].numpy(), v.numpy())
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    )
    return [ParityResult("fit(): 3 SGD steps, Linear+BatchNorm1d+CrossEntropyLoss (params)", diff)]


# ----------------------------------------------------------------------------- running


def run_checks() -> list[ParityResult]:
    """Run every registered check (importing ``kerasnn.parity_optimizers`` if it exists).

    A check that raises gives one row with its name, the error and ``max_abs_diff=nan``.
    """
    _torch()
    try:
        importlib.import_module("kerasnn.parity_optimizers")
    except ModuleNotFoundError as error:
        if error.name != "kerasnn.parity_optimizers":
            raise
    results = []
    for check in CHECKS:
        try:
            results.extend(check())
        except Exception as error:  # noqa: BLE001 - report the failure as a row, run the others
            results.append(ParityResult(f"{check.__name__}: ERROR {type(error).__name__}: {error}", math.nan))
    return results


def _format(value):
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def main(argv=None) -> int:
    """``python -m kerasnn.parity [--json]``. Returns 1 if a check failed to run, else 0."""
    parser = argparse.ArgumentParser(
        prog="python -m kerasnn.parity",
        description="Compare kerasnn with torch on the current Keras backend.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = parser.parse_args(argv)
    backend = keras.backend.backend()
    results = run_checks()
    if args.json:
        print(json.dumps([{"backend": backend, **asdict(r)} for r in results], indent=1))
    else:
        headers = ("technique", "kerasnn vs torch", "Keras look-alike vs torch", "Keras look-alike")
        rows = [
            (r.technique, _format(r.max_abs_diff), _format(r.keras_max_abs_diff), r.keras_builtin or "-")
            for r in results
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print(f"backend: {backend}")
        for row in (headers, tuple("-" * w for w in widths), *rows):
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 1 if any(math.isnan(r.max_abs_diff) for r in results) else 0


if __name__ == "__main__":
    # Delegate to the importable module so checks registered by other modules
    # (``from kerasnn.parity import register``) land in the same CHECKS list.
    from kerasnn.parity import main as _main

    sys.exit(_main())
