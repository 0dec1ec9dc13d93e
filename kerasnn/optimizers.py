"""PyTorch-faithful optimizers as Keras 3 optimizers.

Each class reproduces the update of its ``torch.optim`` namesake (single-tensor CPU path,
``maximize=False``): the same defaults, every argument meaning what it means in torch.
Where Keras' built-in of the same name differs (epsilon inside the root, lr folded into
a velocity, decoupled weight decay, other defaults), these follow torch.

* ``learning_rate`` takes a float or a ``keras.optimizers.schedules.LearningRateSchedule``
  (see :mod:`kerasnn.schedules` for torch's epoch schedulers). It is never folded into a
  state buffer, so a change of learning rate acts as it does in torch.
* ``weight_decay`` has torch's meaning: an L2 term ``g + weight_decay * p`` added to the
  gradient (SGD, Adagrad, RMSprop, Adam) or the decoupled ``p *= 1 - lr * weight_decay``
  (AdamW only). Keras' own, always-decoupled ``weight_decay`` of the base ``Optimizer``
  is therefore switched off (``_apply_weight_decay`` does nothing here); the torch value is
  what ``optimizer.weight_decay`` and ``get_config()["weight_decay"]`` hold.
  ``exclude_from_weight_decay()`` still works and exempts variables from torch's decay.
* Keras' other base options (``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``use_ema``,
  ``loss_scale_factor``, ``gradient_accumulation_steps``, ``name``) work as usual.
* Step counts (Adam's ``t``, Adagrad's ``lr_decay``, SGD's first-step buffer) come from the
  optimizer's iteration counter; torch counts per parameter. They agree whenever every
  variable receives a gradient at every step (always in ``fit()`` on one model).

Two implementations of each update sit side by side: ``update_step`` (one variable, in
``keras.ops``; used on TensorFlow and JAX, where the train step is compiled) and
``_torch_update_step`` (all variables at once with ``torch._foreach_*`` kernels, as Keras
does for its own optimizers on the torch backend, where a per-variable Python update costs
about 1 ms per step). ``_backend_update_step`` picks one, in one place:
:data:`_TORCH_FAST_PATH`.
"""

from __future__ import annotations

import math
import numbers

import keras
from keras import ops

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Momentum", "RMSprop"]

#: Apply updates with torch's multi-tensor ``_foreach`` kernels (torch backend only).
_TORCH_FAST_PATH = keras.backend.backend() == "torch"

if keras.backend.backend() == "torch":
    import torch


# --------------------------------------------------------------------------- validation
def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(  # noqa: TRY004 - bad arguments are ValueErrors throughout kerasnn
            f"`{name}` must be a number, got {value!r}"
        )
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}")
    return value


def _non_negative(value, name):
    value = _number(value, name)
    if value < 0:
        raise ValueError(f"`{name}` must be >= 0, got {value!r}")
    return value


def _unit_interval(value, name):
    """A decay rate in [0, 1)."""
    value = _number(value, name)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}")
    return value


def _learning_rate(value):
    if isinstance(value, keras.optimizers.schedules.LearningRateSchedule) or callable(value):
        return value
    return _non_negative(value, "learning_rate")


def _log(beta):
    """log(beta) in float64 (-inf for 0, so that 1 - beta**t = -expm1(t*log(beta)) = 1)."""
    return math.log(beta) if beta > 0 else -math.inf


# --------------------------------------------------------------------------- base class
class _TorchFaithfulOptimizer(keras.optimizers.Optimizer):
    """Shared plumbing: torch-meaning weight decay and the backend dispatch."""

    def __init__(self, learning_rate, weight_decay=0.0, **kwargs):
        # torch's weight_decay is NOT passed to Keras (whose weight_decay is decoupled).
        super().__init__(learning_rate=_learning_rate(learning_rate), **kwargs)
        self.weight_decay = _non_negative(weight_decay, "weight_decay")

    def _apply_weight_decay(self, variables):
        # Keras' decoupled decay is off: `self.weight_decay` has torch's meaning and is
        # applied inside the update rule.
        return

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if _TORCH_FAST_PATH:
            with torch.no_grad():
                self._torch_update_step(list(grads), list(trainable_variables), learning_rate)
        else:
            super()._backend_update_step(grads, trainable_variables, learning_rate)

    # -- generic (keras.ops) helpers
    def _decays(self, variable):
        return self.weight_decay != 0 and self._use_weight_decay(variable)

    def _l2(self, gradient, variable):
        """torch's coupled weight decay: ``g + weight_decay * p``."""
        if self._decays(variable):
            return ops.add(gradient, ops.multiply(variable, ops.cast(self.weight_decay, variable.dtype)))
        return gradient

    # -- torch fast-path helpers (torch tensors in, torch tensors out)
    def _torch_prepare(self, grads, variables, learning_rate):
        params = [v.value for v in variables]
        grads = [
            g if isinstance(g, torch.Tensor) and g.dtype == p.dtype else torch.as_tensor(g, dtype=p.dtype)
            for g, p in zip(grads, params)
        ]
        lr = ops.convert_to_tensor(learning_rate)
        return grads, params, lr

    def _torch_slots(self, slots, variables):
        return [slots[self._get_variable_index(v)].value for v in variables]

    def _torch_decayed(self, variables):
        """Indices of the variables torch's weight decay applies to (None: all of them)."""
        mask = [self._use_weight_decay(v) for v in variables]
        return None if all(mask) else [i for i, m in enumerate(mask) if m]

    def _torch_l2(self, grads, params, variables):
        if self.weight_decay == 0:
            return grads
        idx = self._torch_decayed(variables)
        if idx is None:
            return list(torch._foreach_add(grads, params, alpha=self.weight_decay))
        grads = list(grads)
        if idx:
            new = torch._foreach_add(
                [grads[i] for i in idx], [params[i] for i in idx], alpha=self.weight_decay
            )
            for i, g in zip(idx, new):
                grads[i] = g
        return grads

    def _torch_update_step(self, grads, variables, learning_rate):
        raise NotImplementedError

    def _iteration_f64(self):
        """0-based optimizer step as a float64 torch scalar (torch-backend fast path)."""
        return ops.convert_to_tensor(self.iterations).to(torch.float64)


# --------------------------------------------------------------------------- SGD
@keras.saving.register_keras_serializable(package="kerasnn")
class SGD(_TorchFaithfulOptimizer):
    """``torch.optim.SGD``: stochastic gradient descent with optional momentum.

    Update rule for parameter ``p`` with gradient ``g`` (``buf`` starts as ``g`` itself on
    the first step, without dampening, as in torch)::

        g = g + weight_decay * p
        buf = momentum * buf + (1 - dampening) * g        # if momentum != 0
        g = g + momentum * buf if nesterov else buf       # if momentum != 0
        p = p - learning_rate * g

    Keras' ``SGD`` folds the learning rate into its velocity (``v = mu*v - lr*g``) and has
    no dampening; this one keeps ``buf`` free of the learning rate.

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-3``.
        momentum: momentum factor >= 0. Defaults to 0.
        dampening: dampening for momentum. Defaults to 0.
        weight_decay: L2 penalty added to the gradient (torch's coupled form). Defaults to 0.
        nesterov: Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        **kwargs: Keras' base optimizer options (``clipnorm``, ``use_ema``, ``name``, ...).
    """

    def __init__(
        self, learning_rate=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, **kwargs
    ):
        momentum = _non_negative(momentum, "momentum")
        dampening = _number(dampening, "dampening")
        nesterov = bool(nesterov)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "`nesterov` momentum requires `momentum` > 0 and `dampening` == 0, "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentum_buffers = []
        if self.momentum != 0:
            self.momentum_buffers = self.add_optimizer_variables(variables, "momentum_buffer")

    def _first_step_coefficient(self, dtype):
        """Weight of g in the buffer update: 1 on the first step (buf = g), else 1 - dampening."""
        return ops.cast(ops.where(ops.equal(self.iterations, 0), 1.0, 1.0 - self.dampening), dtype)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = self._l2(ops.cast(gradient, variable.dtype), variable)
        if self.momentum != 0:
            buf = self.momentum_buffers[self._get_variable_index(variable)]
            scaled = g if self.dampening == 0 else ops.multiply(g, self._first_step_coefficient(g.dtype))
            new_buf = ops.add(ops.multiply(buf, ops.cast(self.momentum, variable.dtype)), scaled)
            self.assign(buf, new_buf)
            if self.nesterov:
                g = ops.add(g, ops.multiply(new_buf, ops.cast(self.momentum, variable.dtype)))
            else:
                g = new_buf
        self.assign_sub(variable, ops.multiply(g, lr))

    def _torch_update_step(self, grads, variables, learning_rate):
        grads, params, lr = self._torch_prepare(grads, variables, learning_rate)
        grads = self._torch_l2(grads, params, variables)
        if self.momentum != 0:
            bufs = self._torch_slots(self.momentum_buffers, variables)
            torch._foreach_mul_(bufs, self.momentum)
            if self.dampening == 0:
                torch._foreach_add_(bufs, grads)
            else:
                coeff = self._first_step_coefficient(params[0].dtype)
                torch._foreach_add_(bufs, torch._foreach_mul(grads, coeff))
            if self.nesterov:
                grads = torch._foreach_add(grads, bufs, alpha=self.momentum)
            else:
                grads = bufs
        torch._foreach_sub_(params, torch._foreach_mul(grads, lr.to(params[0].dtype)))

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "dampening": self.dampening, "nesterov": self.nesterov})
        return config


# --------------------------------------------------------------------------- Momentum
@keras.saving.register_keras_serializable(package="kerasnn")
class Momentum(_TorchFaithfulOptimizer):
    """The tutorial's momentum: an exponential moving average of the gradients.

    Update rule (``v`` starts at 0)::

        v = beta * v + (1 - beta) * g
        p = p - learning_rate * v

    torch has no class for this form; it equals ``torch.optim.SGD(lr=learning_rate *
    (1 - beta), momentum=beta)`` (not ``dampening=beta``, whose first step differs).

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-2``.
        beta: averaging factor in [0, 1). Defaults to 0.9.
        **kwargs: Keras' base optimizer options (``clipnorm``, ``use_ema``, ``name``, ...).
    """

    def __init__(self, learning_rate=1e-2, beta=0.9, **kwargs):
        weight_decay = kwargs.pop("weight_decay", None)
        if weight_decay not in (None, 0, 0.0):
            raise ValueError(f"`weight_decay` is not an argument of Momentum, got {weight_decay!r}")
        beta = _unit_interval(beta, "beta")
        super().__init__(learning_rate, 0.0, **kwargs)
        self.beta = beta

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        v = self.velocities[self._get_variable_index(variable)]
        new_v = ops.add(
            ops.multiply(v, ops.cast(self.beta, variable.dtype)),
            ops.multiply(g, ops.cast(1.0 - self.beta, variable.dtype)),
        )
        self.assign(v, new_v)
        self.assign_sub(variable, ops.multiply(new_v, lr))

    def _torch_update_step(self, grads, variables, learning_rate):
        grads, params, lr = self._torch_prepare(grads, variables, learning_rate)
        vs = self._torch_slots(self.velocities, variables)
        torch._foreach_mul_(vs, self.beta)
        torch._foreach_add_(vs, grads, alpha=1.0 - self.beta)
        torch._foreach_sub_(params, torch._foreach_mul(vs, lr.to(params[0].dtype)))

    def get_config(self):
        config = super().get_config()
        config.update({"beta": self.beta})
        return config


# --------------------------------------------------------------------------- Adagrad
@keras.saving.register_keras_serializable(package="kerasnn")
class Adagrad(_TorchFaithfulOptimizer):
    """``torch.optim.Adagrad``.

    Update rule at step ``t = 1, 2, ...`` (``s`` starts at ``initial_accumulator_value``)::

        g = g + weight_decay * p
        clr = learning_rate / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (sqrt(s) + eps)

    Keras' ``Adagrad`` puts epsilon inside the root, starts at 0.1 and has no ``lr_decay``.

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-2``.
        lr_decay: learning-rate decay per step, >= 0. Defaults to 0.
        weight_decay: L2 penalty added to the gradient. Defaults to 0.
        initial_accumulator_value: starting value of ``s``, >= 0. Defaults to 0.
        eps: added to the root, >= 0. Defaults to ``1e-10``.
        **kwargs: Keras' base optimizer options.
    """

    def __init__(
        self,
        learning_rate=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        **kwargs,
    ):
        lr_decay = _non_negative(lr_decay, "lr_decay")
        initial_accumulator_value = _non_negative(initial_accumulator_value, "initial_accumulator_value")
        eps = _non_negative(eps, "eps")
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.lr_decay = lr_decay
        self.initial_accumulator_value = initial_accumulator_value
        self.eps = eps

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.sums = self.add_optimizer_variables(
            variables, "sum", initializer=keras.initializers.Constant(self.initial_accumulator_value)
        )

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        g = self._l2(ops.cast(gradient, dtype), variable)
        clr = ops.divide(
            ops.cast(learning_rate, dtype),
            ops.add(1.0, ops.multiply(ops.cast(self.iterations, dtype), ops.cast(self.lr_decay, dtype))),
        )
        s = self.sums[self._get_variable_index(variable)]
        new_s = ops.add(s, ops.multiply(g, g))
        self.assign(s, new_s)
        std = ops.add(ops.sqrt(new_s), ops.cast(self.eps, dtype))
        self.assign_sub(variable, ops.divide(ops.multiply(g, clr), std))

    def _torch_update_step(self, grads, variables, learning_rate):
        grads, params, lr = self._torch_prepare(grads, variables, learning_rate)
        grads = self._torch_l2(grads, params, variables)
        dtype = params[0].dtype
        clr = lr.to(torch.float64) / (1.0 + self._iteration_f64() * self.lr_decay)
        sums = self._torch_slots(self.sums, variables)
        torch._foreach_addcmul_(sums, grads, grads)
        std = torch._foreach_sqrt(sums)
        torch._foreach_add_(std, self.eps)
        torch._foreach_addcdiv_(params, torch._foreach_mul(grads, (-clr).to(dtype)), std)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "lr_decay": self.lr_decay,
                "initial_accumulator_value": self.initial_accumulator_value,
                "eps": self.eps,
            }
        )
        return config


# --------------------------------------------------------------------------- RMSprop
@keras.saving.register_keras_serializable(package="kerasnn")
class RMSprop(_TorchFaithfulOptimizer):
    """``torch.optim.RMSprop``.

    Update rule (all state starts at 0)::

        g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            gbar = alpha * gbar + (1 - alpha) * g
            avg = sqrt(v - gbar * gbar) + eps
        else:
            avg = sqrt(v) + eps
        if momentum > 0:
            buf = momentum * buf + g / avg
            p = p - learning_rate * buf
        else:
            p = p - learning_rate * g / avg

    Keras' ``RMSprop`` uses ``rho=0.9``, epsilon inside the root and folds the learning
    rate into its momentum buffer.

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-2``.
        alpha: smoothing constant in [0, 1). Defaults to 0.99.
        eps: added to the root, >= 0. Defaults to ``1e-8``.
        weight_decay: L2 penalty added to the gradient. Defaults to 0.
        momentum: momentum factor >= 0. Defaults to 0.
        centered: normalise by the estimated variance of the gradient. Defaults to False.
        **kwargs: Keras' base optimizer options.
    """

    def __init__(
        self,
        learning_rate=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        **kwargs,
    ):
        alpha = _unit_interval(alpha, "alpha")
        eps = _non_negative(eps, "eps")
        momentum = _non_negative(momentum, "momentum")
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = bool(centered)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.square_avgs = self.add_optimizer_variables(variables, "square_avg")
        self.momentum_buffers = []
        if self.momentum > 0:
            self.momentum_buffers = self.add_optimizer_variables(variables, "momentum_buffer")
        self.grad_avgs = []
        if self.centered:
            self.grad_avgs = self.add_optimizer_variables(variables, "grad_avg")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        lr = ops.cast(learning_rate, dtype)
        g = self._l2(ops.cast(gradient, dtype), variable)
        v = self.square_avgs[index]
        new_v = ops.add(
            ops.multiply(v, ops.cast(self.alpha, dtype)),
            ops.multiply(ops.multiply(g, ops.cast(1.0 - self.alpha, dtype)), g),
        )
        self.assign(v, new_v)
        if self.centered:
            gbar = self.grad_avgs[index]
            new_gbar = ops.add(gbar, ops.multiply(ops.subtract(g, gbar), ops.cast(1.0 - self.alpha, dtype)))
            self.assign(gbar, new_gbar)
            avg = ops.sqrt(ops.subtract(new_v, ops.multiply(new_gbar, new_gbar)))
        else:
            avg = ops.sqrt(new_v)
        avg = ops.add(avg, ops.cast(self.eps, dtype))
        if self.momentum > 0:
            buf = self.momentum_buffers[index]
            new_buf = ops.add(ops.multiply(buf, ops.cast(self.momentum, dtype)), ops.divide(g, avg))
            self.assign(buf, new_buf)
            self.assign_sub(variable, ops.multiply(new_buf, lr))
        else:
            self.assign_sub(variable, ops.divide(ops.multiply(g, lr), avg))

    def _torch_update_step(self, grads, variables, learning_rate):
        grads, params, lr = self._torch_prepare(grads, variables, learning_rate)
        grads = self._torch_l2(grads, params, variables)
        lr = lr.to(params[0].dtype)
        square_avgs = self._torch_slots(self.square_avgs, variables)
        torch._foreach_mul_(square_avgs, self.alpha)
        torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - self.alpha)
        if self.centered:
            grad_avgs = self._torch_slots(self.grad_avgs, variables)
            torch._foreach_lerp_(grad_avgs, grads, 1.0 - self.alpha)
            avg = torch._foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1.0)
            torch._foreach_sqrt_(avg)
        else:
            avg = torch._foreach_sqrt(square_avgs)
        torch._foreach_add_(avg, self.eps)
        if self.momentum > 0:
            bufs = self._torch_slots(self.momentum_buffers, variables)
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_addcdiv_(bufs, grads, avg)
            torch._foreach_sub_(params, torch._foreach_mul(bufs, lr))
        else:
            torch._foreach_addcdiv_(params, torch._foreach_mul(grads, -lr), avg)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"alpha": self.alpha, "eps": self.eps, "momentum": self.momentum, "centered": self.centered}
        )
        return config


# --------------------------------------------------------------------------- Adam / AdamW
@keras.saving.register_keras_serializable(package="kerasnn")
class Adam(_TorchFaithfulOptimizer):
    """``torch.optim.Adam`` (``weight_decay`` is torch's coupled L2 term).

    Update rule at step ``t = 1, 2, ...`` (``m``, ``v``, ``vmax`` start at 0)::

        g = g + weight_decay * p                 # Adam; AdamW instead: p = p * (1 - lr * wd)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        vmax = max(vmax, v)                      # amsgrad only; then v := vmax below
        p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    torch computes the bias corrections ``1 - beta**t`` in Python float64; here they are
    float64 on the torch backend and ``-expm1(t * log(beta))`` (``log(beta)`` taken in
    float64) in float32 elsewhere, which stays within ~2e-7 of torch after 200 steps.
    Keras' ``Adam`` instead folds the corrections into the learning rate (its epsilon is
    scaled by ``sqrt(1 - beta2**t)``), defaults ``epsilon=1e-7`` and decays decoupled.

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-3``.
        betas: ``(beta1, beta2)``, each in [0, 1). Defaults to ``(0.9, 0.999)``.
        eps: added to the denominator, >= 0. Defaults to ``1e-8``.
        weight_decay: L2 penalty added to the gradient. Defaults to 0.
        amsgrad: use the running maximum of ``v`` (AMSGrad). Defaults to False.
        **kwargs: Keras' base optimizer options.
    """

    _decoupled = False

    def __init__(
        self, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, **kwargs
    ):
        try:
            beta_1, beta_2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"`betas` must be a pair (beta1, beta2), got {betas!r}") from None
        beta_1 = _unit_interval(beta_1, "betas[0]")
        beta_2 = _unit_interval(beta_2, "betas[1]")
        eps = _non_negative(eps, "eps")
        super().__init__(learning_rate, weight_decay, **kwargs)
        self.betas = (beta_1, beta_2)
        self.eps = eps
        self.amsgrad = bool(amsgrad)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.exp_avgs, self.exp_avg_sqs = self.add_optimizer_variables(variables, ["exp_avg", "exp_avg_sq"])
        self.max_exp_avg_sqs = []
        if self.amsgrad:
            self.max_exp_avg_sqs = self.add_optimizer_variables(variables, "max_exp_avg_sq")

    def _bias_corrections(self, dtype):
        """(1 - beta1**t, sqrt(1 - beta2**t)) as -expm1(t * log(beta)), in ``dtype``."""
        t = ops.cast(self.iterations + 1, dtype)
        bc1 = ops.negative(ops.expm1(ops.multiply(t, ops.cast(_log(self.betas[0]), dtype))))
        bc2 = ops.negative(ops.expm1(ops.multiply(t, ops.cast(_log(self.betas[1]), dtype))))
        return bc1, ops.sqrt(bc2)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        beta_1, beta_2 = self.betas
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        if not self._decoupled:
            g = self._l2(g, variable)
        elif self._decays(variable):
            self.assign(
                variable,
                ops.multiply(
                    variable, ops.subtract(1.0, ops.multiply(lr, ops.cast(self.weight_decay, dtype)))
                ),
            )
        m = self.exp_avgs[index]
        v = self.exp_avg_sqs[index]
        new_m = ops.add(m, ops.multiply(ops.subtract(g, m), ops.cast(1.0 - beta_1, dtype)))
        new_v = ops.add(
            ops.multiply(v, ops.cast(beta_2, dtype)),
            ops.multiply(ops.multiply(g, ops.cast(1.0 - beta_2, dtype)), g),
        )
        self.assign(m, new_m)
        self.assign(v, new_v)
        if self.amsgrad:
            vmax = self.max_exp_avg_sqs[index]
            new_v = ops.maximum(vmax, new_v)
            self.assign(vmax, new_v)
        bc1, bc2_sqrt = self._bias_corrections(dtype)
        step_size = ops.divide(lr, bc1)
        denom = ops.add(ops.divide(ops.sqrt(new_v), bc2_sqrt), ops.cast(self.eps, dtype))
        self.assign_sub(variable, ops.divide(ops.multiply(new_m, step_size), denom))

    def _torch_update_step(self, grads, variables, learning_rate):
        grads, params, lr = self._torch_prepare(grads, variables, learning_rate)
        dtype = params[0].dtype
        beta_1, beta_2 = self.betas
        lr64 = lr.to(torch.float64)
        if not self._decoupled:
            grads = self._torch_l2(grads, params, variables)
        elif self.weight_decay != 0:
            idx = self._torch_decayed(variables)
            decayed = params if idx is None else [params[i] for i in idx]
            if decayed:
                torch._foreach_mul_(decayed, (1.0 - lr64 * self.weight_decay).to(dtype))
        t = self._iteration_f64() + 1.0
        bc1 = 1.0 - torch.pow(beta_1, t)
        bc2_sqrt = torch.sqrt(1.0 - torch.pow(beta_2, t))
        exp_avgs = self._torch_slots(self.exp_avgs, variables)
        exp_avg_sqs = self._torch_slots(self.exp_avg_sqs, variables)
        torch._foreach_lerp_(exp_avgs, grads, 1.0 - beta_1)
        torch._foreach_mul_(exp_avg_sqs, beta_2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1.0 - beta_2)
        if self.amsgrad:
            vmax = self._torch_slots(self.max_exp_avg_sqs, variables)
            torch._foreach_maximum_(vmax, exp_avg_sqs)
            exp_avg_sqs = vmax
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, bc2_sqrt.to(dtype))
        torch._foreach_add_(denom, self.eps)
        neg_step_size = (-lr64 / bc1).to(dtype)
        torch._foreach_addcdiv_(params, torch._foreach_mul(exp_avgs, neg_step_size), denom)

    def get_config(self):
        config = super().get_config()
        config.update({"betas": list(self.betas), "eps": self.eps, "amsgrad": self.amsgrad})
        return config


@keras.saving.register_keras_serializable(package="kerasnn")
class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay.

    Same update as :class:`Adam` except that ``weight_decay`` shrinks the parameters before
    the step, ``p = p * (1 - learning_rate * weight_decay)``, instead of entering the
    gradient. Defaults to ``weight_decay=1e-2`` (Keras' ``AdamW``: 0.004).

    Args:
        learning_rate: float >= 0 or a ``LearningRateSchedule``. Defaults to ``1e-3``.
        betas: ``(beta1, beta2)``, each in [0, 1). Defaults to ``(0.9, 0.999)``.
        eps: added to the denominator, >= 0. Defaults to ``1e-8``.
        weight_decay: decoupled decay coefficient >= 0. Defaults to ``1e-2``.
        amsgrad: use the running maximum of ``v`` (AMSGrad). Defaults to False.
        **kwargs: Keras' base optimizer options.
    """

    _decoupled = True

    def __init__(
        self, learning_rate=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, **kwargs
    ):
        super().__init__(learning_rate, betas, eps, weight_decay, amsgrad, **kwargs)
