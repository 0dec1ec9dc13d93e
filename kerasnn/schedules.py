"""PyTorch's epoch-based learning-rate schedulers as Keras ``LearningRateSchedule``\\ s.

torch steps a scheduler once per epoch (``scheduler.step()`` after the epoch's optimizer
steps); a Keras schedule is called with the optimizer iteration ``k`` (0-based) on every
step. These schedules map ``k`` to the epoch ``e = floor(k / steps_per_epoch)`` and return
the learning rate torch's scheduler gives during epoch ``e``.

torch updates the learning rate in place (``lr *= gamma``, in Python float64), so after
``n`` decays it holds ``((base * gamma) * gamma) ...``. The schedules here precompute that
same float64 chain once (``_TABLE_SIZE`` decays, every milestone for ``MultiStepLR``) and
look it up, so the float32 value they return is torch's learning rate rounded once to
float32, not a float32 ``gamma ** n`` that drifts by an ulp per decay.

Use :func:`steps_per_epoch` to get ``steps_per_epoch`` from the data set and batch sizes.
"""

from __future__ import annotations

import itertools
import math
import numbers

import keras
import numpy as np
from keras import ops

__all__ = ["ExponentialLR", "MultiStepLR", "StepLR", "steps_per_epoch"]

# Decays precomputed as torch's float64 chain; past this, gamma ** n in float32 (by then
# an exponential schedule has usually decayed to nothing).
_TABLE_SIZE = 1024


def steps_per_epoch(n_samples, batch_size):
    """Optimizer steps in one epoch: ``ceil(n_samples / batch_size)``.

    One epoch visits every sample once in batches of ``batch_size``; a partial last batch
    is still a batch (one iteration), as with torch's ``DataLoader(drop_last=False)`` and
    Keras ``fit()``.

    Raises:
        ValueError: ``n_samples`` or ``batch_size`` is not an integer >= 1.
    """
    n_samples = _positive_int(n_samples, "n_samples")
    batch_size = _positive_int(batch_size, "batch_size")
    return -(-n_samples // batch_size)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout kerasnn
            f"`{name}` must be an integer >= 1, got {value!r}"
        )
    if value < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return int(value)


def _finite_non_negative(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout kerasnn
            f"`{name}` must be a finite number >= 0, got {value!r}"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
    return value


def _torch_chain(initial_learning_rate, gamma, n):
    """torch's learning rate after 0..n-1 in-place decays ``lr = lr * gamma`` (float64)."""
    values = [initial_learning_rate]
    for _ in range(n - 1):
        values.append(values[-1] * gamma)
    return np.asarray(values, dtype=np.float64)


class _EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Shared machinery: iteration -> epoch -> number of decays -> learning rate."""

    def __init__(self, initial_learning_rate, gamma, steps_per_epoch, n_table):
        self.initial_learning_rate = _finite_non_negative(initial_learning_rate, "initial_learning_rate")
        self.gamma = _finite_non_negative(gamma, "gamma")
        self.steps_per_epoch = _positive_int(steps_per_epoch, "steps_per_epoch")
        with np.errstate(over="ignore"):  # gamma > 1 grows past float32 eventually, as in torch
            self._table = _torch_chain(self.initial_learning_rate, self.gamma, n_table).astype(np.float32)

    def _decays(self, epoch):
        """Number of times torch has multiplied the learning rate by gamma by ``epoch``."""
        raise NotImplementedError

    def __call__(self, step):
        dtype = keras.backend.floatx()
        step = ops.cast(step, "int32")
        epoch = ops.floor_divide(step, self.steps_per_epoch)
        n = self._decays(epoch)
        size = self._table.shape[0]
        lr = ops.take(ops.convert_to_tensor(self._table), ops.minimum(n, size - 1))
        if self._bounded:
            return ops.cast(lr, dtype)
        far = self.initial_learning_rate * ops.power(ops.cast(self.gamma, "float32"), ops.cast(n, "float32"))
        return ops.cast(ops.where(n < size, lr, far), dtype)

    _bounded = False

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "gamma": self.gamma,
            "steps_per_epoch": self.steps_per_epoch,
        }


@keras.saving.register_keras_serializable(package="kerasnn")
class StepLR(_EpochSchedule):
    """``torch.optim.lr_scheduler.StepLR`` stepped once per epoch.

    ``lr(k) = initial_learning_rate * gamma ** floor(e / step_size)`` with
    ``e = floor(k / steps_per_epoch)``.

    Args:
        initial_learning_rate: the optimizer's base learning rate (torch's ``lr``).
        step_size: decay every ``step_size`` epochs (integer >= 1).
        gamma: multiplicative decay factor. Defaults to 0.1.
        steps_per_epoch: optimizer steps per epoch (see :func:`steps_per_epoch`).
    """

    def __init__(self, initial_learning_rate, step_size, gamma=0.1, steps_per_epoch=1):
        self.step_size = _positive_int(step_size, "step_size")
        super().__init__(initial_learning_rate, gamma, steps_per_epoch, _TABLE_SIZE)

    def _decays(self, epoch):
        return ops.floor_divide(epoch, self.step_size)

    def get_config(self):
        return {**super().get_config(), "step_size": self.step_size}


@keras.saving.register_keras_serializable(package="kerasnn")
class MultiStepLR(_EpochSchedule):
    """``torch.optim.lr_scheduler.MultiStepLR`` stepped once per epoch.

    ``lr(k) = initial_learning_rate * gamma ** (number of milestones <= e)`` with
    ``e = floor(k / steps_per_epoch)``. A milestone at epoch 0 decays from the start, as
    in torch.

    Args:
        initial_learning_rate: the optimizer's base learning rate (torch's ``lr``).
        milestones: strictly increasing epoch indices (integers >= 0).
        gamma: multiplicative decay factor. Defaults to 0.1.
        steps_per_epoch: optimizer steps per epoch (see :func:`steps_per_epoch`).
    """

    _bounded = True

    def __init__(self, initial_learning_rate, milestones, gamma=0.1, steps_per_epoch=1):
        try:
            milestones = list(milestones)
        except TypeError:
            raise ValueError(
                f"`milestones` must be a sequence of epoch indices, got {milestones!r}"
            ) from None
        if not milestones:
            raise ValueError("`milestones` must not be empty")
        for m in milestones:
            if isinstance(m, bool) or not isinstance(m, numbers.Integral):
                raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout kerasnn
                    f"`milestones` must hold integers, got {milestones!r}"
                )
            if m < 0:
                raise ValueError(f"`milestones` must be >= 0, got {milestones!r}")
        milestones = [int(m) for m in milestones]
        if any(b <= a for a, b in itertools.pairwise(milestones)):
            raise ValueError(f"`milestones` must be strictly increasing, got {milestones!r}")
        self.milestones = milestones
        self._milestones = np.asarray(milestones, dtype=np.int32)
        super().__init__(initial_learning_rate, gamma, steps_per_epoch, len(milestones) + 1)

    def _decays(self, epoch):
        # Works for a scalar step and for a vector of steps alike.
        reached = ops.greater_equal(ops.expand_dims(epoch, -1), ops.convert_to_tensor(self._milestones))
        return ops.sum(ops.cast(reached, "int32"), axis=-1)

    def get_config(self):
        return {**super().get_config(), "milestones": list(self.milestones)}


@keras.saving.register_keras_serializable(package="kerasnn")
class ExponentialLR(_EpochSchedule):
    """``torch.optim.lr_scheduler.ExponentialLR`` stepped once per epoch.

    ``lr(k) = initial_learning_rate * gamma ** e`` with ``e = floor(k / steps_per_epoch)``.

    Args:
        initial_learning_rate: the optimizer's base learning rate (torch's ``lr``).
        gamma: multiplicative decay factor per epoch.
        steps_per_epoch: optimizer steps per epoch (see :func:`steps_per_epoch`).
    """

    def __init__(self, initial_learning_rate, gamma, steps_per_epoch=1):
        super().__init__(initial_learning_rate, gamma, steps_per_epoch, _TABLE_SIZE)

    def _decays(self, epoch):
        return epoch
