"""Parity checks for kerasnn.optimizers and kerasnn.schedules (registered with kerasnn.parity).

Rows (each beside Keras' closest built-in, run on the same inputs):

* every optimizer: 200 steps on fixed parameters fed one precomputed gradient sequence,
  max |parameter difference| to ``torch.optim``;
* optimizers with a schedule attached, against torch with its scheduler stepped per epoch;
* every schedule: max |learning-rate difference| to ``torch.optim.lr_scheduler`` (its
  float64 value rounded to float32) at every iteration of a 10-epoch run with a partial
  last batch;
* the whole-model proof: one epoch of ``fit()`` on the real phone-price data (when
  ``$KERASNN_DATA`` names the CSV) against the native PyTorch loop, max |weight diff|.

The Keras side applies updates the way ``fit()`` does on the backend: eager ``apply`` on
torch (the ``_foreach`` fast path), ``apply`` inside a ``tf.function`` on TensorFlow,
a jitted ``stateless_apply`` on JAX, so the report takes a few seconds per backend.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np
from keras import ops

import kerasnn.optimizers as kopt
from kerasnn import schedules
from kerasnn.parity import ParityResult, max_abs_diff, register

__all__ = ["check_optimizers", "check_schedules", "check_whole_model"]

_STEPS = 200
_SHAPES = [(6, 4), (4,), (3,)]
# 150 samples in batches of 8: 19 steps per epoch, the last batch partial.
_SPE = schedules.steps_per_epoch(150, 8)


def _torch():
    import torch

    torch.set_num_threads(1)
    return torch


def _problem():
    rng = np.random.default_rng(0)
    init = [rng.normal(size=s).astype(np.float32) for s in _SHAPES]
    grads = [
        [(rng.normal(size=s) * (1.0 + 0.9 * math.sin(k / 9.0))).astype(np.float32) for s in _SHAPES]
        for k in range(_STEPS)
    ]
    return init, grads


def _run_torch(make_opt, init, grads, make_scheduler=None):
    torch = _torch()
    params = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    opt = make_opt(params)
    scheduler = make_scheduler(opt) if make_scheduler else None
    for k, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        if scheduler is not None and (k + 1) % _SPE == 0:
            scheduler.step()
    return [p.detach().numpy() for p in params]


def _run_keras(opt, init, grads):
    """Apply ``grads`` step by step as ``fit()`` would on this backend."""
    variables = [keras.Variable(a) for a in init]
    opt.build(variables)
    grads = [[ops.convert_to_tensor(g) for g in step] for step in grads]
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        step = jax.jit(lambda tv, ov, g: opt.stateless_apply(ov, g, tv))
        tv, ov = [v.value for v in variables], [v.value for v in opt.variables]
        for g in grads:
            tv, ov = step(tv, ov, g)
        return [np.asarray(v) for v in tv]
    if backend == "tensorflow":
        import tensorflow as tf

        step = tf.function(lambda g: opt.apply(g, variables))
        for g in grads:
            step(g)
    else:
        for g in grads:
            opt.apply(g, variables)
    return [ops.convert_to_numpy(v) for v in variables]


def _diff(a, b):
    return max(max_abs_diff(x, y) for x, y in zip(a, b))


@register
def check_optimizers() -> list[ParityResult]:
    """Each optimizer, 200 steps against torch.optim, beside Keras' closest built-in."""
    torch = _torch()
    T = torch.optim
    K = keras.optimizers
    sched = keras.optimizers.schedules
    init, grads = _problem()
    cases = [
        (
            "SGD momentum=0.9 dampening=0.3 weight_decay=0.02",
            lambda: kopt.SGD(0.02, momentum=0.9, dampening=0.3, weight_decay=0.02),
            lambda p: T.SGD(p, lr=0.02, momentum=0.9, dampening=0.3, weight_decay=0.02),
            None,
            "keras.optimizers.SGD(momentum=0.9)",
            lambda: K.SGD(0.02, momentum=0.9),
        ),
        (
            "SGD nesterov momentum=0.8",
            lambda: kopt.SGD(0.02, momentum=0.8, nesterov=True),
            lambda p: T.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
            None,
            "keras.optimizers.SGD(momentum=0.8, nesterov=True)",
            lambda: K.SGD(0.02, momentum=0.8, nesterov=True),
        ),
        (
            "Momentum beta=0.9 (= torch SGD lr*(1-beta), momentum=beta)",
            lambda: kopt.Momentum(0.05, beta=0.9),
            lambda p: T.SGD(p, lr=0.05 * 0.1, momentum=0.9),
            None,
            "keras.optimizers.SGD(lr*(1-beta), momentum=beta)",
            lambda: K.SGD(0.05 * 0.1, momentum=0.9),
        ),
        (
            "Adagrad lr_decay=0.02 weight_decay=0.05",
            lambda: kopt.Adagrad(0.1, lr_decay=0.02, weight_decay=0.05),
            lambda p: T.Adagrad(p, lr=0.1, lr_decay=0.02, weight_decay=0.05),
            None,
            "keras.optimizers.Adagrad(initial_accumulator_value=0, epsilon=1e-10)",
            lambda: K.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-10),
        ),
        (
            "RMSprop",
            lambda: kopt.RMSprop(0.01),
            lambda p: T.RMSprop(p, lr=0.01),
            None,
            "keras.optimizers.RMSprop(rho=0.99, epsilon=1e-8)",
            lambda: K.RMSprop(0.01, rho=0.99, epsilon=1e-8),
        ),
        (
            "RMSprop centered momentum=0.7 weight_decay=0.05",
            lambda: kopt.RMSprop(0.005, momentum=0.7, centered=True, weight_decay=0.05),
            lambda p: T.RMSprop(p, lr=0.005, momentum=0.7, centered=True, weight_decay=0.05),
            None,
            "keras.optimizers.RMSprop(rho=0.99, momentum=0.7, centered=True, epsilon=1e-8)",
            lambda: K.RMSprop(0.005, rho=0.99, momentum=0.7, centered=True, epsilon=1e-8),
        ),
        (
            "Adam",
            lambda: kopt.Adam(0.01),
            lambda p: T.Adam(p, lr=0.01),
            None,
            "keras.optimizers.Adam(epsilon=1e-8)",
            lambda: K.Adam(0.01, epsilon=1e-8),
        ),
        (
            "Adam amsgrad weight_decay=0.1 (L2)",
            lambda: kopt.Adam(0.01, amsgrad=True, weight_decay=0.1),
            lambda p: T.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.1),
            None,
            "keras.optimizers.Adam(amsgrad=True, weight_decay=0.1, epsilon=1e-8)",
            lambda: K.Adam(0.01, amsgrad=True, weight_decay=0.1, epsilon=1e-8),
        ),
        (
            "AdamW weight_decay=0.1",
            lambda: kopt.AdamW(0.01, weight_decay=0.1),
            lambda p: T.AdamW(p, lr=0.01, weight_decay=0.1),
            None,
            "keras.optimizers.AdamW(weight_decay=0.1, epsilon=1e-8)",
            lambda: K.AdamW(0.01, weight_decay=0.1, epsilon=1e-8),
        ),
        (
            "SGD momentum=0.9 + StepLR(3, 0.5), 19 steps/epoch",
            lambda: kopt.SGD(schedules.StepLR(0.02, 3, 0.5, _SPE), momentum=0.9),
            lambda p: T.SGD(p, lr=0.02, momentum=0.9),
            lambda o: T.lr_scheduler.StepLR(o, 3, 0.5),
            "keras SGD(momentum=0.9) + ExponentialDecay(staircase)",
            lambda: K.SGD(sched.ExponentialDecay(0.02, 3 * _SPE, 0.5, staircase=True), momentum=0.9),
        ),
        (
            "Adam amsgrad + MultiStepLR([1, 4], 0.1), 19 steps/epoch",
            lambda: kopt.Adam(schedules.MultiStepLR(0.01, [1, 4], 0.1, _SPE), amsgrad=True),
            lambda p: T.Adam(p, lr=0.01, amsgrad=True),
            lambda o: T.lr_scheduler.MultiStepLR(o, [1, 4], 0.1),
            "keras Adam(amsgrad, epsilon=1e-8) + PiecewiseConstantDecay",
            lambda: K.Adam(
                sched.PiecewiseConstantDecay([_SPE - 1, 4 * _SPE - 1], [0.01, 0.001, 0.0001]),
                amsgrad=True,
                epsilon=1e-8,
            ),
        ),
    ]
    rows = []
    for name, ours, theirs, scheduler, builtin_name, builtin in cases:
        expected = _run_torch(theirs, init, grads, scheduler)
        rows.append(
            ParityResult(
                f"optimizer: {name} ({_STEPS} steps, params)",
                _diff(_run_keras(ours(), init, grads), expected),
                builtin_name,
                _diff(_run_keras(builtin(), init, grads), expected),
            )
        )
    return rows


def _torch_lrs(make_scheduler, base_lr, steps_per_epoch, epochs):
    torch = _torch()
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            lrs.append(opt.param_groups[0]["lr"])
            param.grad = torch.zeros(1)
            opt.step()
        scheduler.step()
    return np.asarray(lrs).astype(np.float32)  # the value a float32 schedule can hold


def _keras_lrs(schedule, n, vectorised=True):
    if vectorised:
        return ops.convert_to_numpy(schedule(ops.arange(n, dtype="int32"))).astype(np.float64)
    return np.asarray([float(ops.convert_to_numpy(schedule(k))) for k in range(n)])


@register
def check_schedules() -> list[ParityResult]:
    """Each schedule's learning rate at every iteration of a 10-epoch run, against torch."""
    torch = _torch()
    S = torch.optim.lr_scheduler
    K = keras.optimizers.schedules
    epochs, n = 10, 10 * _SPE
    cases = [
        (
            "StepLR(step_size=3, gamma=0.5)",
            schedules.StepLR(0.1, 3, 0.5, _SPE),
            lambda o: S.StepLR(o, 3, 0.5),
            "ExponentialDecay(decay_steps=3*S, 0.5, staircase=True)",
            K.ExponentialDecay(0.1, 3 * _SPE, 0.5, staircase=True),
        ),
        (
            "MultiStepLR(milestones=[2, 5, 7], gamma=0.3)",
            schedules.MultiStepLR(0.1, [2, 5, 7], 0.3, _SPE),
            lambda o: S.MultiStepLR(o, [2, 5, 7], 0.3),
            "PiecewiseConstantDecay(boundaries=[m*S - 1])",
            K.PiecewiseConstantDecay([2 * _SPE - 1, 5 * _SPE - 1, 7 * _SPE - 1], [0.1, 0.03, 0.009, 0.0027]),
        ),
        (
            "ExponentialLR(gamma=0.8)",
            schedules.ExponentialLR(0.1, 0.8, _SPE),
            lambda o: S.ExponentialLR(o, 0.8),
            "ExponentialDecay(decay_steps=S, 0.8, staircase=True)",
            K.ExponentialDecay(0.1, _SPE, 0.8, staircase=True),
        ),
    ]
    rows = []
    for name, ours, theirs, builtin_name, builtin in cases:
        expected = _torch_lrs(theirs, 0.1, _SPE, epochs)
        rows.append(
            ParityResult(
                f"schedule: {name}, lr at each of {n} iterations ({_SPE} per epoch; torch's lr in float32)",
                max_abs_diff(_keras_lrs(ours, n), expected),
                f"keras.optimizers.schedules.{builtin_name}",
                max_abs_diff(_keras_lrs(builtin, n, vectorised=False), expected),
            )
        )
    return rows


@register
def check_whole_model() -> list[ParityResult]:
    """One epoch of fit() on the real data vs the native torch loop (needs $KERASNN_DATA)."""
    path = os.environ.get("KERASNN_DATA")
    if not path or not Path(path).is_file():
        return []
    import pandas as pd

    from kerasnn.layers import Linear
    from kerasnn.losses import CrossEntropyLoss
    from kerasnn.models import PhonePriceModel

    torch = _torch()
    frame = pd.read_csv(path)
    x = frame.drop(columns=["price_range"]).to_numpy(dtype=np.float64)
    y = frame["price_range"].to_numpy(dtype=np.int64)
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 4),
    )
    start = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in net[::2]]

    def keras_fit(optimizer):
        model = PhonePriceModel()
        layers = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, Linear)]
        for layer, (kernel, bias) in zip(layers, start):
            layer.kernel.assign(kernel.copy())
            layer.bias.assign(bias.copy())
        model.compile(optimizer=optimizer, loss=CrossEntropyLoss())
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
        return [(ops.convert_to_numpy(layer.kernel), ops.convert_to_numpy(layer.bias)) for layer in layers]

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=8, shuffle=False
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()
    expected = [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in net[::2]]

    def diff(weights):
        return max(max_abs_diff(a, b) for pair, ref in zip(weights, expected) for a, b in zip(pair, ref))

    return [
        ParityResult(
            f"whole model: fit() 1 epoch on real data ({len(x)} rows, batch 8), Adam + CrossEntropyLoss (weights)",
            diff(keras_fit(kopt.Adam(1e-3))),
            "keras.optimizers.Adam(epsilon=1e-8)",
            diff(keras_fit(keras.optimizers.Adam(1e-3, epsilon=1e-8))),
        )
    ]
