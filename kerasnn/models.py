"""The tutorial's phone-price network and the variants the tuning ladder tries."""

from __future__ import annotations

import keras

from kerasnn.layers import BatchNorm1d, Dropout, Linear
from kerasnn.ordinal import CumulativeLogits
from kerasnn.schema import N_CLASSES, N_FEATURES

__all__ = ["HEADS", "TUTORIAL_HIDDEN_UNITS", "PhonePriceModel", "build_model"]

TUTORIAL_HIDDEN_UNITS = (128, 256)
HEADS = ("softmax", "ordinal")


@keras.saving.register_keras_serializable(package="kerasnn")
class PhonePriceModel(keras.Model):
    """A multilayer perceptron that outputs class logits.

    Each hidden block is ``Linear -> [BatchNorm1d] -> ReLU -> [Dropout]`` (batch norm
    after the linear layer and before the activation, as the tutorial places it);
    the output layer is a plain ``Linear`` producing ``num_classes`` logits (no
    softmax: :class:`kerasnn.losses.CrossEntropyLoss` takes logits, as torch's does).
    With the defaults this is the tutorial's 20 -> 128 -> ReLU -> 256 -> ReLU -> 4.

    ``head="ordinal"`` replaces that output layer with ``Linear(1)`` (one score per
    row) and :class:`kerasnn.ordinal.CumulativeLogits`, whose class log-probabilities
    take the place of the logits everywhere (loss, softmax, export).

    Args:
        hidden_units: widths of the hidden layers, in order; empty for a linear model.
        dropout: dropout probability after each hidden activation (0 disables).
        batch_norm: insert :class:`kerasnn.layers.BatchNorm1d` in each hidden block.
        head: ``"softmax"`` (the tutorial's) or ``"ordinal"``.
        input_dim, num_classes: the input width and the number of logits.
    """

    def __init__(
        self,
        hidden_units=TUTORIAL_HIDDEN_UNITS,
        dropout=0.0,
        batch_norm=False,
        head="softmax",
        input_dim=N_FEATURES,
        num_classes=N_CLASSES,
        **kwargs,
    ):
        hidden_units = tuple(int(u) for u in hidden_units)
        if hidden_units and min(hidden_units) < 1:
            raise ValueError(f"hidden_units must be positive widths, got {hidden_units!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if int(input_dim) < 1 or int(num_classes) < 2:
            raise ValueError(f"input_dim must be >= 1 and num_classes >= 2, got {input_dim!r}, {num_classes!r}")
        kwargs.setdefault("name", "phone_price_model")
        super().__init__(**kwargs)
        self.hidden_units = hidden_units
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self.head = head
        self.input_dim = int(input_dim)
        self.num_classes = int(num_classes)
        self.hidden_layers = []
        for i, units in enumerate(hidden_units, start=1):
            block = [Linear(units, name=f"linear{i}")]
            if self.batch_norm:
                block.append(BatchNorm1d(name=f"batch_norm{i}"))
            block.append(keras.layers.ReLU(name=f"relu{i}"))
            if self.dropout > 0:
                block.append(Dropout(self.dropout, name=f"dropout{i}"))
            self.hidden_layers.extend(block)
        output_name = f"linear{len(hidden_units) + 1}"
        if head == "ordinal":
            self.output_layer = Linear(1, name=output_name)
            self.ordinal_layer = CumulativeLogits(self.num_classes, name="cumulative_logits")
        else:
            self.output_layer = Linear(self.num_classes, name=output_name)
            self.ordinal_layer = None
        self.build((None, self.input_dim))

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.hidden_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.output_layer.build(shape)
        if self.ordinal_layer is not None:
            self.ordinal_layer.build(self.output_layer.compute_output_shape(shape))
        self.built = True

    def call(self, inputs, training=None):
        x = inputs
        for layer in self.hidden_layers:
            x = layer(x, training=training)
        x = self.output_layer(x)
        if self.ordinal_layer is not None:
            x = self.ordinal_layer(x)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            dropout=self.dropout,
            batch_norm=self.batch_norm,
            head=self.head,
            input_dim=self.input_dim,
            num_classes=self.num_classes,
        )
        return config


def build_model(hidden_units=TUTORIAL_HIDDEN_UNITS, dropout=0.0, batch_norm=False, seed=None,
                head="softmax") -> PhonePriceModel:
    """A :class:`PhonePriceModel`, its initial weights drawn from ``seed`` when given.

    ``seed`` seeds Keras' global generators (``keras.utils.set_random_seed``) before the
    weights are created, so the same seed gives the same initial weights on a backend.
    """
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    return PhonePriceModel(hidden_units=hidden_units, dropout=dropout, batch_norm=batch_norm, head=head)
