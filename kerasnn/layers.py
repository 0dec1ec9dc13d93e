"""PyTorch-faithful Keras layers: ``Linear``, ``Dropout`` and ``BatchNorm1d``.

Each layer computes what its ``torch.nn`` namesake computes, with torch's argument
names and defaults, using ``keras.ops`` only (so the layers run on the torch,
tensorflow and jax backends and export to ONNX). The parity checks in
:mod:`kerasnn.parity` and the tests compare them with torch itself.

One difference is inherent to Keras and cannot be hidden: a torch module starts in
training mode (``module.train()``), while a Keras layer called directly runs in
inference mode unless it gets ``training=True`` (``fit()`` passes it).
"""

import math

import keras
from keras import ops

__all__ = ["BatchNorm1d", "Dropout", "Linear"]


def _check_probability(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be a number between 0 and 1. Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="kerasnn")
class Linear(keras.layers.Dense):
    """``torch.nn.Linear(in_features, units, bias=use_bias)`` as a Keras ``Dense`` layer.

    Same computation as ``Dense``: ``y = x @ W + b`` over the last axis, with ``W``
    stored ``[in, out]`` (torch stores ``weight`` as ``[out, in]`` and computes
    ``x @ weight.T + bias``; :mod:`kerasnn.interop` converts between the layouts).
    Initialisation is torch's default (``reset_parameters``)::

        bound = 1 / sqrt(fan_in)            (0 when fan_in == 0)
        W ~ U(-bound, bound),  b ~ U(-bound, bound)

    which is what ``kaiming_uniform_(a=sqrt(5))`` gives for the weight. Keras'
    ``Dense`` uses ``glorot_uniform`` for the kernel and zeros for the bias instead.

    Args:
        units: number of output features (torch's ``out_features``).
        use_bias: add a bias (torch's ``bias``).
        **kwargs: other ``Dense`` arguments (``activation``, regularizers,
            constraints, ``name`` ...). ``kernel_initializer`` and
            ``bias_initializer`` are not accepted: the initialisation is torch's.
    """

    def __init__(self, units, use_bias=True, **kwargs):
        for key in ("kernel_initializer", "bias_initializer"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"Linear uses torch's initialisation and does not accept `{key}`. "
                    f"Received: {key}={kwargs[key]!r}. Use keras.layers.Dense for a custom initializer."
                )
            kwargs.pop(key, None)
        if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive integer. Received: units={units!r}")
        super().__init__(units, use_bias=use_bias, **kwargs)

    def build(self, input_shape):
        fan_in = input_shape[-1]
        if fan_in is None:
            raise ValueError(
                f"Linear layer '{self.name}' needs a known last input dimension. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.kernel_initializer = keras.initializers.RandomUniform(-bound, bound)
        self.bias_initializer = keras.initializers.RandomUniform(-bound, bound)
        super().build(input_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("kernel_initializer", None)
        config.pop("bias_initializer", None)
        return config


@keras.saving.register_keras_serializable(package="kerasnn")
class Dropout(keras.layers.Layer):
    """``torch.nn.Dropout(p)``: inverted dropout.

    When training, each element is zeroed with probability ``p`` and the kept ones
    are scaled by ``1 / (1 - p)``; ``p = 1`` gives zeros and ``p = 0`` the input.
    Outside training (``training`` false or not given, e.g. ``model.predict`` or a
    bare call) it is the identity, as torch's ``module.eval()``. The random masks of
    Keras and torch never coincide: compare with ``p = 0`` or statistically.

    Args:
        p: probability of an element to be zeroed, in [0, 1].
        seed: optional integer seed of the layer's random generator.
    """

    def __init__(self, p=0.5, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.p = _check_probability("p", p)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.p not in (0.0, 1.0) else None
        self.supports_masking = True
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.p == 0.0:
            return inputs
        if self.p == 1.0:
            return ops.zeros_like(inputs)
        return keras.random.dropout(inputs, self.p, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"p": self.p, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="kerasnn")
class BatchNorm1d(keras.layers.Layer):
    """``torch.nn.BatchNorm1d`` over the last axis (features last, as Keras).

    For an input ``[N, C]`` (or ``[N, ..., C]``: statistics over every axis but the
    last) in training, with ``n`` the number of values per feature::

        mean = sum(x) / n                      (two passes: numerically stable)
        var  = sum((x - mean)^2) / n           (biased, used to normalise)
        y    = (x - mean) / sqrt(var + eps) * gamma + beta
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var + momentum * var * n / (n - 1)

    In inference (``training`` false) ``y`` uses ``running_mean``/``running_var``,
    unless ``track_running_stats=False``: then there are no running statistics and
    batch statistics are used in inference too, as in torch.

    Differences from ``keras.layers.BatchNormalization``: momentum is torch's (weight
    of the new batch, 0.1; Keras' 0.99 is the weight of the old value), ``eps`` is
    1e-5 (Keras 1e-3), the running variance gets the unbiased batch variance, and
    the variance is computed in two passes (Keras' torch backend uses
    ``E[x^2] - E[x]^2``, which gives NaN for data with mean 1e3 and std 0.1).
    Setting ``layer.trainable = False`` does not switch to inference mode (torch's
    ``requires_grad_(False)`` does not either): only ``training`` decides.

    Weights (``get_weights()`` order): ``gamma, beta`` (if ``affine``), then
    ``running_mean, running_var`` (if ``track_running_stats``). torch's
    ``num_batches_tracked`` only matters for ``momentum=None`` (cumulative average),
    which is not supported.

    Args:
        momentum: weight of the current batch statistics in the running ones, in [0, 1].
        eps: added to the variance before the square root, > 0.
        affine: learn a scale ``gamma`` (init 1) and a shift ``beta`` (init 0).
        track_running_stats: keep running statistics for inference.
    """

    def __init__(self, momentum=0.1, eps=1e-5, affine=True, track_running_stats=True, **kwargs):
        super().__init__(**kwargs)
        if momentum is None:
            raise ValueError(
                "`momentum=None` (torch's cumulative moving average) is not supported: "
                "give a number between 0 and 1."
            )
        self.momentum = _check_probability("momentum", momentum)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"`eps` must be a positive number. Received: eps={eps!r}")
        self.eps = float(eps)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                f"BatchNorm1d layer '{self.name}' expects inputs of rank >= 2 with a known last "
                f"(feature) dimension. Received: input_shape={tuple(input_shape)}"
            )
        features = input_shape[-1]
        self.num_features = features
        self.gamma = self.beta = self.running_mean = self.running_var = None
        if self.affine:
            self.gamma = self.add_weight(shape=(features,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(features,), initializer="zeros", name="beta")
        if self.track_running_stats:
            self.running_mean = self.add_weight(
                shape=(features,), initializer="zeros", name="running_mean", trainable=False
            )
            self.running_var = self.add_weight(
                shape=(features,), initializer="ones", name="running_var", trainable=False
            )

    def _check_input(self, inputs):
        shape = tuple(inputs.shape)
        if len(shape) < 2 or shape[-1] != self.num_features:
            raise ValueError(
                f"BatchNorm1d layer '{self.name}' was built for inputs [N, ..., {self.num_features}]. "
                f"Received: inputs.shape={shape}"
            )
        return shape

    def call(self, inputs, training=False):
        shape = self._check_input(inputs)
        input_dtype = inputs.dtype
        if input_dtype in ("float16", "bfloat16"):
            inputs = ops.cast(inputs, "float32")
        axes = tuple(range(len(shape) - 1))
        use_batch_stats = bool(training) or not self.track_running_stats
        if use_batch_stats:
            count = math.prod(shape[:-1]) if None not in shape[:-1] else None
            if count == 1:
                raise ValueError(
                    f"BatchNorm1d layer '{self.name}' needs more than 1 value per feature to use batch "
                    f"statistics (as torch). Received: inputs.shape={shape}"
                )
            mean = ops.mean(inputs, axis=axes)
            centered = ops.subtract(inputs, mean)
            var = ops.mean(ops.square(centered), axis=axes)
            if training and self.track_running_stats:
                n = ops.cast(ops.prod(ops.shape(inputs)[:-1]), var.dtype) if count is None else float(count)
                unbiased = var * n / (n - 1.0)
                m = self.momentum
                self.running_mean.assign(
                    m * ops.cast(mean, self.running_mean.dtype) + (1.0 - m) * self.running_mean
                )
                self.running_var.assign(
                    m * ops.cast(unbiased, self.running_var.dtype) + (1.0 - m) * self.running_var
                )
        else:
            mean = ops.cast(self.running_mean, inputs.dtype)
            var = ops.cast(self.running_var, inputs.dtype)
            centered = ops.subtract(inputs, mean)
        invstd = ops.divide(1.0, ops.sqrt(ops.add(var, self.eps)))
        outputs = ops.multiply(centered, invstd)
        if self.affine:
            outputs = ops.add(
                ops.multiply(outputs, ops.cast(self.gamma, outputs.dtype)), ops.cast(self.beta, outputs.dtype)
            )
        return ops.cast(outputs, input_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "eps": self.eps,
                "affine": self.affine,
                "track_running_stats": self.track_running_stats,
            }
        )
        return config
