"""PyTorch-faithful losses as Keras 3 ``Loss`` classes.

Each class computes exactly what its ``torch.nn`` namesake computes (formula,
divisor of the ``"mean"`` reduction, clamps and, for ``BCELoss``, gradient), with
torch's argument names and defaults, in ``keras.ops`` (torch, tensorflow and jax
backends). They are called Keras-style, ``loss(y_true, y_pred)``, i.e. with the
arguments in the opposite order to torch's ``loss(input, target)``, and work as
``model.compile(loss=...)``.

Reductions
----------
``reduction`` is torch's: ``"mean"`` (default), ``"sum"`` or ``"none"`` (the
per-element losses, in torch's shape: ``[N]`` for ``CrossEntropyLoss``, the shape of
``y_pred`` for the others). The Keras base class' own reduction and mask handling
are not used.

Keras ``sample_weight``
-----------------------
``loss(y_true, y_pred, sample_weight=sw)`` (and ``fit(..., sample_weight=...)``)
multiplies the per-element losses (the ``"none"`` output) by ``sw`` before the
reduction. ``sw`` is aligned on the leading axes (``[N]`` against ``[N, D]`` means
one weight per row; a trailing axis of size 1 is squeezed) and broadcast. The
divisor of ``"mean"`` is unchanged: torch's (number of elements; for
``CrossEntropyLoss`` with class indices the sum of ``weight[y_n]`` over the targets
that are not ignored; for probability targets ``N``). So ``sw`` of ones changes
nothing, and zeros do not shrink the divisor (Keras' ``"sum_over_batch_size"``).

Input checks
------------
Shapes and ranks are checked at call time and raise ``ValueError`` naming the
argument and the expected shape. Value checks (class indices in ``[0, C)`` or equal
to ``ignore_index``, integral class indices, probabilities in ``[0, 1]`` for
``BCELoss``) need concrete values: they run when the tensors are eager (torch
backend outside ``torch.compile``, eager TensorFlow, un-traced JAX). Inside a
compiled graph (``tf.function``, ``jax.jit``, i.e. ``fit()`` on the tensorflow and
jax backends) only the shape checks happen; an out-of-range index there gives
whatever the backend's gather gives.

Under a ``tf.distribute`` strategy with several replicas, Keras divides its own
reduced losses by the number of replicas; these losses do not.
"""

import math

import keras
import numpy as np
from keras import ops

__all__ = [
    "BCELoss",
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "MSELoss",
    "SmoothL1Loss",
]

REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------- helpers


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"`reduction` must be one of {REDUCTIONS} (torch's reductions). Received: reduction={reduction!r}"
        )
    return reduction


def _check_number(name, value, *, positive=False, nonnegative=False, upper=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number. Received: {name}={value!r}")
    if positive and not value > 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value!r}")
    if nonnegative and not value >= 0:
        raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
    if upper is not None and not value <= upper:
        raise ValueError(f"`{name}` must be <= {upper}. Received: {name}={value!r}")
    return float(value)


def _weight_list(name, weight, *, rank1=False):
    """Store a weight tensor as a (nested) list of floats, for get_config()."""
    if weight is None:
        return None
    try:
        try:
            array = np.asarray(weight, dtype="float64")
        except (TypeError, ValueError, RuntimeError):
            array = np.asarray(ops.convert_to_numpy(weight), dtype="float64")
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(
            f"`{name}` must be a tensor or a list of numbers. Received: {name}={weight!r}"
        ) from error
    if rank1 and array.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D tensor of shape [C]. Received shape: {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"`{name}` must hold finite numbers. Received: {name}={array.tolist()}")
    return array.tolist()


def _shape(x):
    return tuple(x.shape)


def _dims_compatible(a, b):
    return a is None or b is None or a == b


def _shapes_equal(s1, s2):
    return len(s1) == len(s2) and all(_dims_compatible(a, b) for a, b in zip(s1, s2, strict=True))


def _broadcastable(small, big):
    """Whether shape `small` broadcasts to `big` (numpy rules, unknown dims allowed)."""
    if len(small) > len(big):
        return False
    for a, b in zip(reversed(small), reversed(big), strict=False):
        if not (a == 1 or _dims_compatible(a, b)):
            return False
    return True


def _concrete(x):
    """``x`` as a NumPy array if its values are available now, else ``None``.

    ``None`` for Keras symbolic tensors, TensorFlow graph tensors, JAX tracers and
    torch tensors under ``torch.compile`` or on the meta device.
    """
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.KerasTensor):
        return None
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly() or not hasattr(x, "numpy"):
            return None
    elif backend == "jax":
        import jax

        if isinstance(x, jax.core.Tracer):
            return None
    elif backend == "torch":
        import torch

        if torch.compiler.is_compiling() or (isinstance(x, torch.Tensor) and x.device.type == "meta"):
            return None
    try:
        return ops.convert_to_numpy(x)
    except Exception:  # noqa: BLE001 - any backend that cannot give values: skip value checks
        return None


def _expand_sample_weight(sample_weight, losses, dtype):
    sw = ops.convert_to_tensor(sample_weight, dtype=dtype)
    sw_shape, loss_shape = _shape(sw), _shape(losses)
    if len(sw_shape) == len(loss_shape) + 1 and sw_shape[-1] == 1:
        sw = ops.squeeze(sw, axis=-1)
        sw_shape = sw_shape[:-1]
    if len(sw_shape) > len(loss_shape) or not all(
        a == 1 or _dims_compatible(a, b) for a, b in zip(sw_shape, loss_shape, strict=False)
    ):
        raise ValueError(
            f"`sample_weight` must match the leading axes of the per-element losses {loss_shape} "
            f"(e.g. shape [{loss_shape[0] if loss_shape else ''}]). Received: sample_weight.shape={sw_shape}"
        )
    for _ in range(len(loss_shape) - len(sw_shape)):
        sw = ops.expand_dims(sw, axis=-1)
    return sw


class _TorchLoss(keras.losses.Loss):
    """Base: torch reductions, Keras sample weights, per-element losses from ``call``."""

    def __init__(self, reduction="mean", name=None, dtype=None):
        _check_reduction(reduction)
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    # Subclasses: _prepare(y_true, y_pred) -> (y_true, y_pred) with checks,
    # call(y_true, y_pred) -> per-element losses, _divisor(y_true, y_pred, losses) -> "mean" divisor.
    def _prepare(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = ops.convert_to_tensor(y_true, dtype=self.dtype)
        if not _shapes_equal(_shape(y_true), _shape(y_pred)):
            raise ValueError(
                f"{type(self).__name__}: `y_true` must have the shape of `y_pred` {_shape(y_pred)} "
                f"(torch does not allow other shapes here without broadcasting). "
                f"Received: y_true.shape={_shape(y_true)}"
            )
        return y_true, y_pred

    def _divisor(self, y_true, y_pred, losses):
        return ops.cast(ops.size(losses), losses.dtype)

    def __call__(self, y_true, y_pred, sample_weight=None):
        with keras.name_scope(self.name):
            y_true, y_pred = self._prepare(y_true, y_pred)
            losses = self.call(y_true, y_pred)
            if sample_weight is not None:
                losses = losses * _expand_sample_weight(sample_weight, losses, losses.dtype)
            if self.reduction == "none":
                return losses
            total = ops.sum(losses)
            if self.reduction == "sum":
                return total
            return total / self._divisor(y_true, y_pred, losses)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, "dtype": self._dtype_policy.name}


def _abs(d):
    """``|d|`` whose gradient is ``sign(d)`` (0 at ``d = 0``, as torch; JAX's ``abs`` gives 1)."""
    return d * ops.sign(d)


def _weight_tensor(values, dtype):
    return None if values is None else ops.convert_to_tensor(np.asarray(values), dtype=dtype)


def _check_weight_broadcast(cls_name, arg, weight, shape):
    if weight is not None and not _broadcastable(tuple(np.shape(weight)), shape):
        raise ValueError(
            f"{cls_name}: `{arg}` of shape {tuple(np.shape(weight))} does not broadcast to the "
            f"input shape {shape}."
        )


# --------------------------------------------------------------------------- cross entropy


@keras.saving.register_keras_serializable(package="kerasnn")
class CrossEntropyLoss(_TorchLoss):
    """``torch.nn.CrossEntropyLoss`` on logits ``y_pred`` of shape ``[N, C]``.

    With ``logp = log_softmax(y_pred)``, ``w`` the class weights (ones if ``weight``
    is None) and ``eps = label_smoothing``:

    Class indices ``y_true`` of shape ``[N]`` (any integer or integral float dtype)::

        nll_n    = -w[y_n] * logp[n, y_n]
        smooth_n = -sum_c w_c * logp[n, c]
        l_n      = (1 - eps) * nll_n + eps / C * smooth_n     (0 where y_n == ignore_index)
        "mean"   = sum_n l_n / sum_{n: y_n != ignore_index} w[y_n]

    so every target ignored gives ``0 / 0 = nan``, as torch.

    Class probabilities ``y_true`` of shape ``[N, C]`` (same shape as ``y_pred``)::

        t~  = y_true * (1 - eps) + eps / C
        l_n = -sum_c w_c * t~[n, c] * logp[n, c]
        "mean" = sum_n l_n / N                     (N even with class weights)

    ``ignore_index`` must then be negative (torch refuses it for probability targets).

    Args:
        weight: optional class weights, shape ``[C]``.
        ignore_index: target value that contributes neither loss nor gradient.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``[N]``).
        label_smoothing: ``eps`` in ``[0, 1]``.
    """

    def __init__(
        self, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, name=None, dtype=None
    ):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.weight = _weight_list("weight", weight, rank1=True)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout kerasnn
                f"`ignore_index` must be an integer. Received: ignore_index={ignore_index!r}"
            )
        self.ignore_index = int(ignore_index)
        self.label_smoothing = _check_number("label_smoothing", label_smoothing, nonnegative=True, upper=1.0)

    def _prepare(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        pred_shape = _shape(y_pred)
        if len(pred_shape) != 2:
            raise ValueError(
                f"CrossEntropyLoss: `y_pred` must be logits of shape [N, C]. Received: y_pred.shape={pred_shape}"
            )
        num_classes = pred_shape[1]
        if self.weight is not None and num_classes is not None and len(self.weight) != num_classes:
            raise ValueError(
                f"CrossEntropyLoss: `weight` must have one entry per class ({num_classes}, the last axis "
                f"of y_pred). Received: len(weight)={len(self.weight)}"
            )
        y_true = ops.convert_to_tensor(y_true)
        true_shape = _shape(y_true)
        if len(true_shape) == 2:
            if not _shapes_equal(true_shape, pred_shape):
                raise ValueError(
                    "CrossEntropyLoss: `y_true` of rank 2 holds class probabilities and must have the "
                    f"shape of y_pred {pred_shape}. Received: y_true.shape={true_shape}"
                )
            if self.ignore_index >= 0:
                raise ValueError(
                    "CrossEntropyLoss: `ignore_index` is not supported with class-probability targets "
                    f"(as in torch). Received: ignore_index={self.ignore_index}"
                )
            return ops.cast(y_true, self.dtype), y_pred
        if len(true_shape) != 1 or not _dims_compatible(true_shape[0], pred_shape[0]):
            raise ValueError(
                f"CrossEntropyLoss: `y_true` must be class indices of shape [N] = [{pred_shape[0]}] or class "
                f"probabilities of shape {pred_shape}. Received: y_true.shape={true_shape}"
            )
        values = _concrete(y_true)
        if values is not None and num_classes is not None:
            if not np.all(np.equal(np.mod(values, 1), 0)):
                raise ValueError(
                    f"CrossEntropyLoss: class indices in `y_true` must be integers. Received: {values.tolist()}"
                )
            bad = (values != self.ignore_index) & ((values < 0) | (values >= num_classes))
            if np.any(bad):
                raise ValueError(
                    f"CrossEntropyLoss: class indices in `y_true` must be in [0, {num_classes}) or equal "
                    f"ignore_index={self.ignore_index}. Received out of range: {sorted(set(values[bad].tolist()))}"
                )
        return ops.cast(y_true, "int32"), y_pred

    def _is_index_target(self, y_true):
        return len(_shape(y_true)) == 1

    def call(self, y_true, y_pred):
        num_classes = ops.shape(y_pred)[-1]
        logp = ops.log_softmax(y_pred, axis=-1)
        weight = _weight_tensor(self.weight, logp.dtype)
        eps = self.label_smoothing
        if not self._is_index_target(y_true):
            target = y_true
            if eps > 0.0:
                target = target * (1.0 - eps) + eps / num_classes
            prod = logp * target
            if weight is not None:
                prod = prod * weight
            return -ops.sum(prod, axis=-1)
        keep, valid, safe = self._target_masks(y_true, num_classes)
        picked = ops.squeeze(ops.take_along_axis(logp, ops.expand_dims(safe, -1), axis=-1), axis=-1)
        nll = -picked
        if weight is not None:
            nll = nll * ops.take(weight, safe)
        if eps > 0.0:
            smooth = -ops.sum(logp * weight if weight is not None else logp, axis=-1)
            losses = (1.0 - eps) * nll + smooth * (eps / num_classes)
        else:
            losses = nll
        losses = ops.where(keep, losses, ops.zeros_like(losses))
        # Out-of-range indices only get here inside a compiled graph (eager calls raise):
        # give NaN rather than whatever the backend's gather does.
        return ops.where(valid, losses, ops.full_like(losses, float("nan")))

    def _target_masks(self, y_true, num_classes):
        """(not ignored, ignored or in range, index safe to gather)."""
        keep = ops.not_equal(y_true, self.ignore_index)
        in_range = ops.logical_and(ops.greater_equal(y_true, 0), ops.less(y_true, num_classes))
        valid = ops.logical_or(ops.logical_not(keep), in_range)
        safe = ops.where(ops.logical_and(keep, in_range), y_true, ops.zeros_like(y_true))
        return keep, valid, safe

    def _divisor(self, y_true, y_pred, losses):
        if not self._is_index_target(y_true):
            return ops.cast(ops.shape(losses)[0], losses.dtype)
        keep, _, safe = self._target_masks(y_true, ops.shape(y_pred)[-1])
        keep = ops.cast(keep, losses.dtype)
        if self.weight is None:
            return ops.sum(keep)
        return ops.sum(ops.take(_weight_tensor(self.weight, losses.dtype), safe) * keep)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weight": self.weight,
                "ignore_index": self.ignore_index,
                "label_smoothing": self.label_smoothing,
            }
        )
        return config


# --------------------------------------------------------------------------- binary cross entropy


@ops.custom_gradient
def _bce_elementwise(p, y):
    """torch's elementwise binary cross entropy, with torch's gradient (ATen Loss.cpp)."""
    log_p = ops.log(p)
    log_1mp = ops.log1p(-p)
    loss = (y - 1.0) * ops.maximum(log_1mp, -100.0) - y * ops.maximum(log_p, -100.0)

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        grad_p = upstream * (p - y) / ops.maximum(p * (1.0 - p), 1e-12)
        grad_y = upstream * (log_1mp - log_p)
        return grad_p, grad_y

    return loss, grad


@keras.saving.register_keras_serializable(package="kerasnn")
class BCELoss(_TorchLoss):
    """``torch.nn.BCELoss`` on probabilities ``y_pred`` in [0, 1].

    ::

        l = -w * (y * max(log p, -100) + (1 - y) * max(log(1 - p), -100))
        dl/dp = w * (p - y) / max(p * (1 - p), 1e-12)          (torch's gradient)

    The clamp keeps the loss finite at ``p = 0`` and ``p = 1`` (at most ``100 * w``)
    and the gradient is torch's, also there (a custom gradient: autodiff of the
    clamped formula would give 0 or inf). ``keras.losses.BinaryCrossentropy`` clips
    ``p`` to ``[1e-7, 1 - 1e-7]`` instead (loss at most about 16.1, zero gradient
    beyond the clip). ``"mean"`` divides by the number of elements.

    Args:
        weight: optional rescaling weight broadcastable to ``y_pred``'s shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
    """

    def __init__(self, weight=None, reduction="mean", name=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.weight = _weight_list("weight", weight)

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = super()._prepare(y_true, y_pred)
        _check_weight_broadcast("BCELoss", "weight", self.weight, _shape(y_pred))
        values = _concrete(y_pred)
        if values is not None and np.any((values < 0) | (values > 1)):
            raise ValueError(
                "BCELoss: `y_pred` must be probabilities in [0, 1] (use BCEWithLogitsLoss for logits). "
                f"Received values in [{np.nanmin(values)}, {np.nanmax(values)}]"
            )
        return y_true, y_pred

    def call(self, y_true, y_pred):
        losses = _bce_elementwise(y_pred, y_true)
        if self.weight is not None:
            losses = losses * _weight_tensor(self.weight, losses.dtype)
        return losses

    def get_config(self):
        config = super().get_config()
        config["weight"] = self.weight
        return config


@keras.saving.register_keras_serializable(package="kerasnn")
class BCEWithLogitsLoss(_TorchLoss):
    """``torch.nn.BCEWithLogitsLoss`` on logits ``y_pred``, numerically stable.

    ::

        l = w * ((1 - y) * x - (1 + (pos_weight - 1) * y) * log_sigmoid(x))

    with ``log_sigmoid(x) = min(x, 0) - log1p(exp(-|x|))`` (finite for any ``x``).
    ``"mean"`` divides by the number of elements.

    Args:
        weight: optional rescaling weight broadcastable to ``y_pred``'s shape.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
        pos_weight: optional weight of the positive term, broadcastable to
            ``y_pred``'s shape (typically ``[C]`` for ``[N, C]``).
    """

    def __init__(self, weight=None, reduction="mean", pos_weight=None, name=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.weight = _weight_list("weight", weight)
        self.pos_weight = _weight_list("pos_weight", pos_weight)

    def _prepare(self, y_true, y_pred):
        y_true, y_pred = super()._prepare(y_true, y_pred)
        _check_weight_broadcast("BCEWithLogitsLoss", "weight", self.weight, _shape(y_pred))
        _check_weight_broadcast("BCEWithLogitsLoss", "pos_weight", self.pos_weight, _shape(y_pred))
        return y_true, y_pred

    def call(self, y_true, y_pred):
        log_sig = ops.log_sigmoid(y_pred)
        if self.pos_weight is not None:
            pos_weight = _weight_tensor(self.pos_weight, y_pred.dtype)
            log_sig = log_sig * ((pos_weight - 1.0) * y_true + 1.0)
        losses = (1.0 - y_true) * y_pred - log_sig
        if self.weight is not None:
            losses = losses * _weight_tensor(self.weight, losses.dtype)
        return losses

    def get_config(self):
        config = super().get_config()
        config.update({"weight": self.weight, "pos_weight": self.pos_weight})
        return config


# --------------------------------------------------------------------------- regression


@keras.saving.register_keras_serializable(package="kerasnn")
class L1Loss(_TorchLoss):
    """``torch.nn.L1Loss``: ``l = |y_pred - y_true|``; ``"mean"`` over all elements.

    The gradient at ``y_pred == y_true`` is 0 (``sign(0)``), as torch. ``y_true`` must
    have ``y_pred``'s shape (torch would broadcast ``[N]`` against ``[N, 1]`` to
    ``[N, N]``; this raises instead).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
    """

    def call(self, y_true, y_pred):
        return _abs(y_pred - y_true)


@keras.saving.register_keras_serializable(package="kerasnn")
class MSELoss(_TorchLoss):
    """``torch.nn.MSELoss``: ``l = (y_pred - y_true)^2``; ``"mean"`` over all elements.

    ``y_true`` must have ``y_pred``'s shape (no silent broadcasting).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
    """

    def call(self, y_true, y_pred):
        return ops.square(y_pred - y_true)


@keras.saving.register_keras_serializable(package="kerasnn")
class SmoothL1Loss(_TorchLoss):
    """``torch.nn.SmoothL1Loss(beta)``, with ``d = y_pred - y_true``::

        l = 0.5 * d^2 / beta     if |d| < beta
            |d| - 0.5 * beta     otherwise            (beta = 0: l = |d|)

    Equal to ``HuberLoss(delta=beta) / beta``; ``keras.losses.Huber(delta=beta)`` is
    therefore ``beta`` times this loss.

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
        beta: threshold between the quadratic and linear parts, >= 0.
    """

    def __init__(self, reduction="mean", beta=1.0, name=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.beta = _check_number("beta", beta, nonnegative=True)

    def call(self, y_true, y_pred):
        d = _abs(y_pred - y_true)
        if self.beta == 0.0:
            return d
        return ops.where(d < self.beta, 0.5 * d * d / self.beta, d - 0.5 * self.beta)

    def get_config(self):
        config = super().get_config()
        config["beta"] = self.beta
        return config


@keras.saving.register_keras_serializable(package="kerasnn")
class HuberLoss(_TorchLoss):
    """``torch.nn.HuberLoss(delta)``, with ``d = y_pred - y_true``::

        l = 0.5 * d^2                     if |d| <= delta
            delta * (|d| - 0.5 * delta)   otherwise

    Same as ``keras.losses.Huber(delta)`` per element; ``"mean"`` over all elements
    (Keras averages over the last axis, then over the batch: equal for equal-sized rows).

    Args:
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (shape of ``y_pred``).
        delta: threshold between the quadratic and linear parts, > 0.
    """

    def __init__(self, reduction="mean", delta=1.0, name=None, dtype=None):
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.delta = _check_number("delta", delta, positive=True)

    def call(self, y_true, y_pred):
        d = _abs(y_pred - y_true)
        return ops.where(d < self.delta, 0.5 * d * d, self.delta * (d - 0.5 * self.delta))

    def get_config(self):
        config = super().get_config()
        config["delta"] = self.delta
        return config
