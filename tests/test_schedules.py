"""kerasnn.schedules against torch.optim.lr_scheduler, computed here.

torch runs a multi-epoch loop (optimizer.step() on every iteration, scheduler.step() once
per epoch) and records the learning rate each iteration used; the Keras schedule, called
with the 0-based optimizer iteration, must give that learning rate rounded to float32.
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

from kerasnn import schedules

torch.set_num_threads(1)


def torch_lrs(make_scheduler, base_lr, steps_per_epoch, epochs):
    """The learning rate torch used at every iteration of ``epochs`` epochs."""
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
    return np.asarray(lrs, dtype=np.float64)


def keras_lrs(schedule, n):
    """The schedule at iterations 0..n-1, in one vectorised call (padded to a fixed length
    so that JAX compiles each op once, not once per example)."""
    length = max(n, 300)
    return ops.convert_to_numpy(schedule(ops.arange(length, dtype="int32")))[:n]


def assert_equal_to_torch(schedule, expected):
    actual = keras_lrs(schedule, len(expected))
    np.testing.assert_array_equal(actual, expected.astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(
    base=st.floats(1e-4, 1.0),
    step_size=st.integers(1, 5),
    gamma=st.floats(0.05, 1.5),
    spe=st.integers(1, 7),
    epochs=st.integers(1, 25),
)
def test_steplr_equals_torch_at_every_iteration(base, step_size, gamma, spe, epochs):
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size, gamma), base, spe, epochs)
    assert_equal_to_torch(schedules.StepLR(base, step_size, gamma, steps_per_epoch=spe), expected)


@settings(max_examples=25, deadline=None)
@given(
    base=st.floats(1e-4, 1.0),
    milestones=st.lists(st.integers(0, 20), min_size=1, max_size=5, unique=True).map(sorted),
    gamma=st.floats(0.05, 1.5),
    spe=st.integers(1, 7),
    epochs=st.integers(1, 25),
)
def test_multisteplr_equals_torch_at_every_iteration(base, milestones, gamma, spe, epochs):
    expected = torch_lrs(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma), base, spe, epochs
    )
    assert_equal_to_torch(schedules.MultiStepLR(base, milestones, gamma, steps_per_epoch=spe), expected)


@settings(max_examples=25, deadline=None)
@given(
    base=st.floats(1e-4, 1.0),
    gamma=st.floats(0.05, 1.5),
    spe=st.integers(1, 7),
    epochs=st.integers(1, 40),
)
def test_exponentiallr_equals_torch_at_every_iteration(base, gamma, spe, epochs):
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma), base, spe, epochs)
    assert_equal_to_torch(schedules.ExponentialLR(base, gamma, steps_per_epoch=spe), expected)


def test_tutorial_run_with_a_partial_last_batch():
    """1600 rows in batches of 7: 229 steps per epoch (the last batch has 4 rows), 6 epochs."""
    spe = schedules.steps_per_epoch(1600, 7)
    assert spe == 229
    expected = torch_lrs(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 4], 0.1), 1e-3, spe, 6)
    assert_equal_to_torch(schedules.MultiStepLR(1e-3, [2, 4], steps_per_epoch=spe), expected)


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.StepLR(0.1, 2, 0.5, steps_per_epoch=3),
        schedules.MultiStepLR(0.1, [1, 3], 0.5, steps_per_epoch=3),
        schedules.ExponentialLR(0.1, 0.9, steps_per_epoch=3),
    ],
    ids=["step", "multistep", "exponential"],
)
def test_scalar_call_as_the_optimizer_makes_it_matches_the_vector_call(schedule):
    """Keras calls the schedule with the optimizer's iteration variable, a scalar."""
    vector = keras_lrs(schedule, 15)
    iteration = keras.Variable(0, dtype="int", trainable=False)
    for k in range(15):
        iteration.assign(k)
        assert float(ops.convert_to_numpy(schedule(iteration))) == vector[k]


def test_decay_past_the_precomputed_table_falls_back_to_the_closed_form():
    schedule = schedules.ExponentialLR(1.0, 1.0001, steps_per_epoch=1)
    value = float(ops.convert_to_numpy(schedule(5000)))
    assert value == pytest.approx(1.0001**5000, rel=1e-4)
    step = schedules.StepLR(1.0, 1, 0.999, steps_per_epoch=2)
    assert float(ops.convert_to_numpy(step(4000))) == pytest.approx(0.999**2000, rel=1e-4)


def scalar_lrs(schedule, n):
    """The schedule at iterations 0..n-1, one scalar call each (Keras' own schedules need it)."""
    return np.asarray([float(ops.convert_to_numpy(schedule(k))) for k in range(n)], dtype=np.float32)


def test_keras_lookalikes_need_shifted_boundaries():
    """PiecewiseConstantDecay switches after step == boundary: epoch milestone m is m*S - 1."""
    spe, milestones = 5, [2, 4]
    ours = keras_lrs(schedules.MultiStepLR(0.1, milestones, 0.1, steps_per_epoch=spe), 30)
    lookalike = keras.optimizers.schedules.PiecewiseConstantDecay(
        [m * spe - 1 for m in milestones], [0.1, 0.01, 0.001]
    )
    np.testing.assert_allclose(scalar_lrs(lookalike, 30), ours, rtol=1e-6)
    ours = keras_lrs(schedules.ExponentialLR(0.1, 0.9, steps_per_epoch=spe), 30)
    lookalike = keras.optimizers.schedules.ExponentialDecay(0.1, spe, 0.9, staircase=True)
    np.testing.assert_allclose(scalar_lrs(lookalike, 30), ours, rtol=1e-6)


# --------------------------------------------------------------------------- steps_per_epoch
@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 5000), batch=st.integers(1, 600))
def test_steps_per_epoch_counts_the_partial_batch_like_a_dataloader(n, batch):
    steps = schedules.steps_per_epoch(n, batch)
    assert steps == math.ceil(n / batch)
    assert steps == len(torch.utils.data.DataLoader(range(n), batch_size=batch))


@pytest.mark.parametrize(
    "args, name, error",
    [
        ((0, 8), "n_samples", ValueError),
        ((100, 0), "batch_size", ValueError),
        ((-5, 8), "n_samples", ValueError),
        ((100.0, 8), "n_samples", ValueError),
        ((100, True), "batch_size", ValueError),
    ],
)
def test_steps_per_epoch_validates(args, name, error):
    with pytest.raises(error, match=name):
        schedules.steps_per_epoch(*args)


# --------------------------------------------------------------------------- bad input, config
BAD = [
    (lambda: schedules.StepLR(0.1, 2, steps_per_epoch=0), "steps_per_epoch"),
    (lambda: schedules.MultiStepLR(0.1, [2], steps_per_epoch=-1), "steps_per_epoch"),
    (lambda: schedules.ExponentialLR(0.1, 0.9, steps_per_epoch=0), "steps_per_epoch"),
    (lambda: schedules.StepLR(0.1, 0), "step_size"),
    (lambda: schedules.MultiStepLR(0.1, [3, 2]), "milestones"),
    (lambda: schedules.MultiStepLR(0.1, [2, 2]), "milestones"),
    (lambda: schedules.MultiStepLR(0.1, []), "milestones"),
    (lambda: schedules.MultiStepLR(0.1, [-1, 2]), "milestones"),
    (lambda: schedules.ExponentialLR(-0.1, 0.9), "initial_learning_rate"),
    (lambda: schedules.ExponentialLR(float("nan"), 0.9), "initial_learning_rate"),
    (lambda: schedules.ExponentialLR(0.1, float("inf")), "gamma"),
    (lambda: schedules.StepLR(0.1, 2, gamma=-0.5), "gamma"),
]


@pytest.mark.parametrize("make, name", BAD)
def test_bad_arguments_raise_value_error_naming_them(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize(
    "schedule",
    [
        schedules.StepLR(0.1, 3, 0.5, steps_per_epoch=7),
        schedules.MultiStepLR(0.1, [1, 5], 0.2, steps_per_epoch=7),
        schedules.ExponentialLR(0.1, 0.95, steps_per_epoch=7),
    ],
    ids=["step", "multistep", "exponential"],
)
def test_config_round_trip(schedule):
    config = schedule.get_config()
    clone = type(schedule).from_config(copy.deepcopy(config))
    assert clone.get_config() == config
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert type(restored) is type(schedule)
    np.testing.assert_array_equal(keras_lrs(restored, 50), keras_lrs(schedule, 50))
