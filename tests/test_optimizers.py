"""kerasnn.optimizers against torch.optim, computed here on the same parameters and gradients.

Both sides get an identical precomputed gradient sequence (200 steps); the Keras side
applies it with ``optimizer.apply_gradients``, the path ``fit()`` takes. On the torch
backend every parity case runs twice: through the ``torch._foreach`` fast path (what
``fit()`` uses there; ``test_torch_fast_path_is_the_fit_path`` checks that) and through
the generic ``keras.ops`` ``update_step`` (what TensorFlow and JAX use).
"""

import copy
import math

import keras
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import ops

import kerasnn.optimizers as kopt
from kerasnn import schedules

torch.set_num_threads(1)

BACKEND = keras.backend.backend()
STEPS = 200
ATOL = 1e-5
SHAPES = [(6, 4), (4,), (3,)]
NAMES = ["kernel", "bias", "gain"]


def _problem(steps=STEPS, seed=0):
    """Initial parameters and a gradient sequence whose scale rises and falls (AMSGrad's max matters)."""
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [
        [(rng.normal(size=s) * (1.0 + 0.9 * math.sin(k / 9.0))).astype(np.float32) for s in SHAPES]
        for k in range(steps)
    ]
    return init, grads


INIT, GRADS = _problem()


def run_torch(make_opt, init, grads, make_scheduler=None, steps_per_epoch=1, groups=None):
    params = [torch.nn.Parameter(torch.tensor(a)) for a in init]
    opt = make_opt(groups(params) if groups else params)
    scheduler = make_scheduler(opt) if make_scheduler else None
    for k, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        opt.step()
        if scheduler is not None and (k + 1) % steps_per_epoch == 0:
            scheduler.step()
    return [p.detach().numpy() for p in params]


def run_keras(opt, init, grads, names=NAMES):
    variables = [keras.Variable(a, name=n) for a, n in zip(init, names)]
    for step_grads in grads:
        opt.apply_gradients(zip([ops.convert_to_tensor(g) for g in step_grads], variables))
    return [ops.convert_to_numpy(v) for v in variables]


def max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


PATHS = ["foreach", "ops"] if BACKEND == "torch" else ["ops"]


@pytest.fixture(params=PATHS)
def update_path(request, monkeypatch):
    """Which implementation applies the update: torch's multi-tensor kernels or keras.ops."""
    monkeypatch.setattr(kopt, "_TORCH_FAST_PATH", request.param == "foreach")
    return request.param


T = torch.optim
# id, kerasnn optimizer, torch optimizer on params
CASES = [
    ("sgd", lambda: kopt.SGD(0.05), lambda p: T.SGD(p, lr=0.05)),
    ("sgd-wd", lambda: kopt.SGD(0.05, weight_decay=0.05), lambda p: T.SGD(p, lr=0.05, weight_decay=0.05)),
    (
        "sgd-momentum-dampening-wd",
        lambda: kopt.SGD(0.02, momentum=0.9, dampening=0.3, weight_decay=0.02),
        lambda p: T.SGD(p, lr=0.02, momentum=0.9, dampening=0.3, weight_decay=0.02),
    ),
    (
        "sgd-nesterov-wd",
        lambda: kopt.SGD(0.02, momentum=0.8, nesterov=True, weight_decay=0.05),
        lambda p: T.SGD(p, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.05),
    ),
    (
        "momentum",
        lambda: kopt.Momentum(0.05, beta=0.9),
        lambda p: T.SGD(p, lr=0.05 * (1 - 0.9), momentum=0.9),
    ),
    ("adagrad", lambda: kopt.Adagrad(0.05), lambda p: T.Adagrad(p, lr=0.05)),
    (
        "adagrad-lr_decay-wd-init",
        lambda: kopt.Adagrad(0.1, lr_decay=0.02, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-6),
        lambda p: T.Adagrad(
            p, lr=0.1, lr_decay=0.02, weight_decay=0.05, initial_accumulator_value=0.1, eps=1e-6
        ),
    ),
    ("rmsprop", lambda: kopt.RMSprop(0.01), lambda p: T.RMSprop(p, lr=0.01)),
    (
        "rmsprop-momentum-wd",
        lambda: kopt.RMSprop(0.005, alpha=0.9, momentum=0.5, weight_decay=0.05),
        lambda p: T.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.5, weight_decay=0.05),
    ),
    (
        "rmsprop-centered-momentum-wd",
        lambda: kopt.RMSprop(0.005, momentum=0.7, centered=True, weight_decay=0.05, eps=1e-6),
        lambda p: T.RMSprop(p, lr=0.005, momentum=0.7, centered=True, weight_decay=0.05, eps=1e-6),
    ),
    ("adam", lambda: kopt.Adam(0.01), lambda p: T.Adam(p, lr=0.01)),
    (
        "adam-amsgrad-l2",
        lambda: kopt.Adam(0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.1),
        lambda p: T.Adam(p, lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.1),
    ),
    ("adamw", lambda: kopt.AdamW(0.01), lambda p: T.AdamW(p, lr=0.01)),
    (
        "adamw-amsgrad-wd",
        lambda: kopt.AdamW(0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.3, amsgrad=True),
        lambda p: T.AdamW(p, lr=0.01, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.3, amsgrad=True),
    ),
]


@pytest.mark.parametrize("make_keras, make_torch", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_for_200_steps(make_keras, make_torch, update_path):
    expected = run_torch(make_torch, INIT, GRADS)
    actual = run_keras(make_keras(), INIT, GRADS)
    assert max_diff(actual, INIT) > 0.05, "the parameters should move"
    assert max_diff(actual, expected) <= ATOL


# Each optimizer with a schedule attached; torch steps its scheduler once per epoch.
# 150 samples in batches of 8: 19 steps per epoch (the last batch partial), ~10.5 epochs.
SPE = schedules.steps_per_epoch(150, 8)
SCHEDULE_CASES = [
    (
        "sgd-momentum-dampening+steplr",
        lambda: kopt.SGD(schedules.StepLR(0.02, 3, 0.5, SPE), momentum=0.9, dampening=0.1),
        lambda p: T.SGD(p, lr=0.02, momentum=0.9, dampening=0.1),
        lambda o: T.lr_scheduler.StepLR(o, 3, 0.5),
    ),
    (
        "momentum+exponentiallr",
        lambda: kopt.Momentum(schedules.ExponentialLR(0.05, 0.8, SPE), beta=0.9),
        lambda p: T.SGD(p, lr=0.05 * (1 - 0.9), momentum=0.9),
        lambda o: T.lr_scheduler.ExponentialLR(o, 0.8),
    ),
    (
        "adagrad-lr_decay+multisteplr",
        lambda: kopt.Adagrad(schedules.MultiStepLR(0.1, [2, 5, 7], 0.3, SPE), lr_decay=0.01),
        lambda p: T.Adagrad(p, lr=0.1, lr_decay=0.01),
        lambda o: T.lr_scheduler.MultiStepLR(o, [2, 5, 7], 0.3),
    ),
    (
        "rmsprop-centered-momentum+steplr",
        lambda: kopt.RMSprop(schedules.StepLR(0.005, 2, 0.5, SPE), momentum=0.7, centered=True),
        lambda p: T.RMSprop(p, lr=0.005, momentum=0.7, centered=True),
        lambda o: T.lr_scheduler.StepLR(o, 2, 0.5),
    ),
    (
        "adam-amsgrad+multisteplr",
        lambda: kopt.Adam(schedules.MultiStepLR(0.01, [1, 4], 0.1, SPE), amsgrad=True, weight_decay=0.01),
        lambda p: T.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.01),
        lambda o: T.lr_scheduler.MultiStepLR(o, [1, 4], 0.1),
    ),
    (
        "adamw+exponentiallr",
        lambda: kopt.AdamW(schedules.ExponentialLR(0.01, 0.9, SPE), weight_decay=0.1),
        lambda p: T.AdamW(p, lr=0.01, weight_decay=0.1),
        lambda o: T.lr_scheduler.ExponentialLR(o, 0.9),
    ),
]


@pytest.mark.parametrize(
    "make_keras, make_torch, make_scheduler",
    [c[1:] for c in SCHEDULE_CASES],
    ids=[c[0] for c in SCHEDULE_CASES],
)
def test_with_schedule_matches_torch_with_scheduler(make_keras, make_torch, make_scheduler, update_path):
    expected = run_torch(make_torch, INIT, GRADS, make_scheduler, steps_per_epoch=SPE)
    actual = run_keras(make_keras(), INIT, GRADS)
    assert max_diff(actual, expected) <= ATOL


@pytest.mark.parametrize(
    "make_keras, make_torch",
    [
        (lambda: kopt.SGD(0.02, momentum=0.9), lambda p: T.SGD(p, lr=0.02, momentum=0.9)),
        (lambda: kopt.RMSprop(0.01, momentum=0.5), lambda p: T.RMSprop(p, lr=0.01, momentum=0.5)),
    ],
    ids=["sgd-momentum", "rmsprop-momentum"],
)
def test_learning_rate_change_mid_run_acts_as_in_torch(make_keras, make_torch, update_path):
    """The learning rate is not folded into the momentum buffer (Keras' SGD/RMSprop fold it)."""
    half = STEPS // 2

    def torch_run():
        params = [torch.nn.Parameter(torch.tensor(a)) for a in INIT]
        opt = make_torch(params)
        for k, step_grads in enumerate(GRADS):
            if k == half:
                opt.param_groups[0]["lr"] *= 5.0
            for p, g in zip(params, step_grads):
                p.grad = torch.tensor(g)
            opt.step()
        return [p.detach().numpy() for p in params]

    opt = make_keras()
    variables = [keras.Variable(a) for a in INIT]
    for k, step_grads in enumerate(GRADS):
        if k == half:
            opt.learning_rate = float(opt.learning_rate) * 5.0
        opt.apply_gradients(zip([ops.convert_to_tensor(g) for g in step_grads], variables))
    assert max_diff([ops.convert_to_numpy(v) for v in variables], torch_run()) <= ATOL


@pytest.mark.parametrize(
    "make_keras, make_torch",
    [
        (
            lambda: kopt.Adam(0.01, weight_decay=0.1),
            lambda groups: T.Adam(groups, lr=0.01, weight_decay=0.1),
        ),
        (
            lambda: kopt.AdamW(0.01, weight_decay=0.3),
            lambda groups: T.AdamW(groups, lr=0.01, weight_decay=0.3),
        ),
        (
            lambda: kopt.SGD(0.05, momentum=0.5, weight_decay=0.1),
            lambda groups: T.SGD(groups, lr=0.05, momentum=0.5, weight_decay=0.1),
        ),
    ],
    ids=["adam", "adamw", "sgd"],
)
def test_exclude_from_weight_decay_is_a_torch_param_group_without_decay(make_keras, make_torch, update_path):
    opt = make_keras()
    opt.exclude_from_weight_decay(var_names=["bias"])
    expected = run_torch(
        make_torch,
        INIT,
        GRADS,
        groups=lambda p: [{"params": [p[0], p[2]]}, {"params": [p[1]], "weight_decay": 0.0}],
    )
    assert max_diff(run_keras(opt, INIT, GRADS), expected) <= ATOL


@settings(max_examples=8, deadline=None)
@given(
    beta_1=st.floats(0.0, 0.95),
    beta_2=st.floats(0.5, 0.9999),
    eps=st.sampled_from([1e-8, 1e-6, 1e-3]),
    weight_decay=st.sampled_from([0.0, 0.01, 0.2]),
    amsgrad=st.booleans(),
    decoupled=st.booleans(),
)
def test_adam_family_matches_torch_over_hyperparameters(
    beta_1, beta_2, eps, weight_decay, amsgrad, decoupled
):
    init, grads = INIT, GRADS[:40]
    keras_cls, torch_cls = (kopt.AdamW, T.AdamW) if decoupled else (kopt.Adam, T.Adam)
    kwargs = {"betas": (beta_1, beta_2), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad}
    expected = run_torch(lambda p: torch_cls(p, lr=0.01, **kwargs), init, grads)
    actual = run_keras(keras_cls(0.01, **kwargs), init, grads)
    assert max_diff(actual, expected) <= ATOL


# --------------------------------------------------------------------------- Keras base options
def test_global_clipnorm_matches_torch_clip_grad_norm(update_path):
    params = [torch.nn.Parameter(torch.tensor(a)) for a in INIT]
    opt = T.SGD(params, lr=0.05, momentum=0.9)
    for step_grads in GRADS:
        for p, g in zip(params, step_grads):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)
        opt.step()
    expected = [p.detach().numpy() for p in params]
    actual = run_keras(kopt.SGD(0.05, momentum=0.9, global_clipnorm=1.0), INIT, GRADS)
    assert max_diff(actual, expected) <= ATOL


def test_clipnorm_and_loss_scale_act_on_the_gradient_before_the_torch_rule(update_path):
    """clipnorm clips each tensor to norm 1; loss_scale_factor divides the gradients."""

    def clip(g):
        return g / max(float(np.linalg.norm(g)), 1.0)

    grads = GRADS[:80]
    clipped = [[clip(g) for g in step_grads] for step_grads in grads]
    expected = run_torch(lambda p: T.RMSprop(p, lr=0.01, momentum=0.5), INIT, clipped)
    actual = run_keras(kopt.RMSprop(0.01, momentum=0.5, clipnorm=1.0), INIT, grads)
    assert max_diff(actual, expected) <= ATOL

    scaled = [[g * 4.0 for g in step_grads] for step_grads in grads]
    expected = run_torch(lambda p: T.Adam(p, lr=0.01), INIT, grads)
    actual = run_keras(kopt.Adam(0.01, loss_scale_factor=4.0), INIT, scaled)
    assert max_diff(actual, expected) <= ATOL


def test_gradient_accumulation_is_torch_on_the_averaged_gradients(update_path):
    """Two micro-batches per step; Adam's step count t counts real updates, as in torch."""
    grads = GRADS[:20]
    averaged = [[(a + b) / 2 for a, b in zip(g1, g2)] for g1, g2 in zip(grads[::2], grads[1::2])]
    expected = run_torch(lambda p: T.Adam(p, lr=0.01, weight_decay=0.01), INIT, averaged)
    actual = run_keras(kopt.Adam(0.01, weight_decay=0.01, gradient_accumulation_steps=2), INIT, grads)
    assert max_diff(actual, expected) <= ATOL


def test_use_ema_keeps_a_moving_average():
    opt = kopt.Adam(0.01, use_ema=True, ema_momentum=0.9)
    run_keras(opt, INIT, GRADS[:5])
    assert len(opt._model_variables_moving_average) == len(INIT)


# --------------------------------------------------------------------------- torch fast path
@pytest.mark.skipif(BACKEND != "torch", reason="the foreach fast path exists on the torch backend only")
@pytest.mark.parametrize("cls", [kopt.SGD, kopt.Momentum, kopt.Adagrad, kopt.RMSprop, kopt.Adam, kopt.AdamW])
def test_torch_fast_path_is_the_fit_path(cls, monkeypatch):
    """fit() and apply_gradients() both go through ``_torch_update_step``, never ``update_step``."""
    calls = {"fast": 0}
    fast = cls._torch_update_step

    def counting(self, *args):
        calls["fast"] += 1
        return fast(self, *args)

    def forbidden(self, *args):
        raise AssertionError("the per-variable update_step ran on the torch backend")

    monkeypatch.setattr(cls, "_torch_update_step", counting)
    monkeypatch.setattr(cls, "update_step", forbidden)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    model.compile(optimizer=cls(0.01), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
    y = np.zeros((16, 2), "float32")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    assert calls["fast"] == 2
    run_keras(cls(0.01), INIT, GRADS[:3])
    assert calls["fast"] == 5


# --------------------------------------------------------------------------- config, serialization
CONFIG_CASES = [
    kopt.SGD(0.1, momentum=0.9, dampening=0.2, weight_decay=0.01, clipnorm=1.0),
    kopt.SGD(0.1, momentum=0.9, nesterov=True),
    kopt.Momentum(0.2, beta=0.8, global_clipnorm=2.0),
    kopt.Adagrad(0.3, lr_decay=0.1, weight_decay=0.2, initial_accumulator_value=0.5, eps=1e-6),
    kopt.RMSprop(0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.3, centered=True),
    kopt.Adam(0.002, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True, name="adam_x"),
    kopt.AdamW(schedules.MultiStepLR(0.01, [2, 4], 0.5, steps_per_epoch=10), weight_decay=0.05),
]


@pytest.mark.parametrize("opt", CONFIG_CASES, ids=lambda o: type(o).__name__)
def test_config_round_trip(opt):
    config = opt.get_config()
    clone = type(opt).from_config(copy.deepcopy(config))
    assert clone.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(restored) is type(opt)
    assert restored.get_config() == config


def test_weight_decay_is_torch_meaning_not_keras_decoupled_decay():
    opt = kopt.Adam(0.01, weight_decay=0.1)
    assert opt.weight_decay == 0.1
    assert opt.get_config()["weight_decay"] == 0.1
    assert kopt.Adam.from_config(opt.get_config()).weight_decay == 0.1
    # Keras' own decoupled decay would shrink the parameter; it must not run.
    variable = keras.Variable(np.ones(3, "float32"))
    opt.build([variable])
    opt._apply_weight_decay([variable])
    np.testing.assert_array_equal(ops.convert_to_numpy(variable), np.ones(3, "float32"))


def test_defaults_are_torch_defaults():
    for cls, torch_cls in [
        (kopt.SGD, T.SGD),
        (kopt.Adagrad, T.Adagrad),
        (kopt.RMSprop, T.RMSprop),
        (kopt.Adam, T.Adam),
        (kopt.AdamW, T.AdamW),
    ]:
        torch_defaults = torch_cls([torch.nn.Parameter(torch.zeros(1))]).defaults
        config = cls().get_config()
        assert math.isclose(config["learning_rate"], torch_defaults["lr"], rel_tol=1e-7), cls
        for key, value in config.items():
            if key in torch_defaults and key != "betas":
                assert value == torch_defaults[key], (cls, key)
        if "betas" in config:
            assert tuple(config["betas"]) == tuple(torch_defaults["betas"])
    assert kopt.SGD().get_config()["learning_rate"] == pytest.approx(1e-3)
    assert kopt.Momentum().beta == 0.9


# --------------------------------------------------------------------------- bad input
BAD = [
    (lambda: kopt.SGD(-0.1), "learning_rate"),
    (lambda: kopt.Adam(float("nan")), "learning_rate"),
    (lambda: kopt.RMSprop(float("inf")), "learning_rate"),
    (lambda: kopt.Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda: kopt.AdamW(betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda: kopt.Adam(betas=(-0.1, 0.999)), r"betas\[0\]"),
    (lambda: kopt.Adam(betas=(0.9,)), "betas"),
    (lambda: kopt.SGD(0.1, nesterov=True), "nesterov"),
    (lambda: kopt.SGD(0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    (lambda: kopt.SGD(0.1, momentum=-0.9), "momentum"),
    (lambda: kopt.SGD(0.1, weight_decay=-1.0), "weight_decay"),
    (lambda: kopt.Momentum(0.1, beta=1.0), "beta"),
    (lambda: kopt.Momentum(0.1, weight_decay=0.1), "weight_decay"),
    (lambda: kopt.Adagrad(lr_decay=-0.1), "lr_decay"),
    (lambda: kopt.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda: kopt.Adagrad(eps=-1.0), "eps"),
    (lambda: kopt.RMSprop(alpha=1.0), "alpha"),
    (lambda: kopt.RMSprop(momentum=float("nan")), "momentum"),
    (lambda: kopt.Adam(eps=float("inf")), "eps"),
]


@pytest.mark.parametrize("make, name", BAD, ids=[b[1].replace("\\", "") for b in BAD])
def test_bad_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@settings(max_examples=25, deadline=None)
@given(
    lr=st.one_of(
        st.floats(max_value=-1e-12, allow_infinity=True), st.just(float("nan")), st.just(float("inf"))
    ),
    cls=st.sampled_from([kopt.SGD, kopt.Momentum, kopt.Adagrad, kopt.RMSprop, kopt.Adam, kopt.AdamW]),
)
def test_any_negative_or_non_finite_learning_rate_is_rejected(lr, cls):
    with pytest.raises(ValueError, match="learning_rate"):
        cls(lr)


def test_wrong_types_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="learning_rate"):
        kopt.SGD("0.1")
    with pytest.raises(ValueError, match="momentum"):
        kopt.SGD(0.1, momentum=None)


def test_saved_model_restores_the_optimizer_and_its_state(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    schedule = schedules.StepLR(0.01, 1, 0.5, steps_per_epoch=2)
    model.compile(optimizer=kopt.AdamW(schedule, amsgrad=True, weight_decay=0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    model.fit(x, np.ones((8, 2), "float32"), batch_size=4, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert type(restored.optimizer) is kopt.AdamW
    assert isinstance(restored.optimizer._learning_rate, schedules.StepLR)
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
