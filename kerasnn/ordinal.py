"""An ordinal output head: the cumulative-logit ("proportional odds") model as a Keras layer.

``price_range`` is ordered (low < medium < high < very high cost). A softmax head
ignores that order and spends ``(C - 1) x width`` extra parameters learning it; the
cumulative-logit model scores each row once and cuts the score at ``C - 1`` ordered
thresholds. On the phone-price data that structure is worth about half a point of
cross-validated accuracy over a softmax head (see docs/tuning/README.md).

This is not one of the tutorial's torch techniques (torch has no such layer); it is
the same model as ``statsmodels``' ``OrderedModel(distr="logit")`` and ``mord``'s
``LogisticAT``, written with ``keras.ops`` so that it runs on every backend and
exports to ONNX.
"""

import math

import keras
from keras import ops

__all__ = ["CumulativeLogits"]


@keras.saving.register_keras_serializable(package="kerasnn")
class CumulativeLogits(keras.layers.Layer):
    """Class log-probabilities of the cumulative-logit model from a scalar score.

    For a score ``s`` (input ``[N, 1]``) and thresholds ``t_0 < t_1 < ... < t_{C-2}``::

        P(y <= k) = sigmoid(t_k - s)
        P(y = k)  = P(y <= k) - P(y <= k - 1)          (P(y <= -1) = 0, P(y <= C-1) = 1)

    The output is ``log P(y = k)``, ``[N, C]``. Because these are log-probabilities,
    softmax returns ``P`` unchanged, so the output is a drop-in for logits:
    :class:`kerasnn.losses.CrossEntropyLoss` on it is the model's negative
    log-likelihood, and a softmax after it (as in the exported ONNX graph) gives the
    class probabilities.

    The thresholds are ``t_0 = first_threshold`` and ``t_k = t_{k-1} + g_k`` with
    ``g_k = softplus(gap_k) > 0``, so they stay ordered under any gradient step. The log
    of a difference of sigmoids is computed without cancellation: with ``a = t_{k-1} - s``
    and ``b = t_k - s = a + g_k``::

        log P(y = k) = log sigmoid(b) + log sigmoid(-a) + log(1 - exp(-g_k))
        log(1 - exp(-g)) = log tanh(g / 2) + softplus(-g)

    (the last form instead of ``log(-expm1(-g))`` because ONNX has no Expm1 operator;
    it is as accurate for small ``g``).

    Args:
        num_classes: number of ordered classes ``C`` (at least 2).
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}")
        self.num_classes = num_classes

    def build(self, input_shape):
        if input_shape[-1] != 1:
            raise ValueError(f"CumulativeLogits takes a score of shape [N, 1]. Received: input_shape={input_shape}")
        cuts = self.num_classes - 1
        # Start with thresholds at -(C-2), ..., (C-2) spaced 2 apart: classes equally likely-ish for s = 0.
        self.first_threshold = self.add_weight(
            shape=(1,), initializer=keras.initializers.Constant(-(cuts - 1.0)), name="first_threshold")
        self.gaps = None
        if cuts > 1:  # softplus(gap) = 2  <=>  gap = log(e^2 - 1)
            self.gaps = self.add_weight(
                shape=(cuts - 1,), initializer=keras.initializers.Constant(math.log(math.expm1(2.0))), name="gaps")

    def thresholds(self):
        """The ordered thresholds ``t_0 .. t_{C-2}``, a tensor of shape ``[C - 1]``."""
        if self.gaps is None:
            return self.first_threshold
        steps = ops.cumsum(ops.softplus(self.gaps))
        return ops.concatenate([self.first_threshold, self.first_threshold + steps], axis=0)

    def call(self, inputs):
        t = ops.expand_dims(self.thresholds(), 0)            # [1, C-1]
        z = t - ops.cast(inputs, t.dtype)                    # [N, C-1]: t_k - s
        first = ops.log_sigmoid(z[:, :1])                    # log P(y = 0)
        last = ops.log_sigmoid(-z[:, -1:])                   # log P(y = C-1)
        if self.gaps is None:
            return ops.concatenate([first, last], axis=1)
        g = ops.softplus(self.gaps)                          # t_k - t_{k-1} > 0
        log_one_minus_exp = ops.log(ops.tanh(0.5 * g)) + ops.softplus(-g)
        middle = ops.log_sigmoid(z[:, 1:]) + ops.log_sigmoid(-z[:, :-1]) + ops.expand_dims(log_one_minus_exp, 0)
        return ops.concatenate([first, middle, last], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
