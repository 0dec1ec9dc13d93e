"""Helpers shared by the parity tests: gradients on the current Keras backend and in torch.

``value_and_grad(fn, x)`` differentiates a Keras-ops function with the backend's own
autodiff (torch.autograd on the torch backend, ``tf.GradientTape`` on tensorflow,
``jax.value_and_grad`` on jax), so the tests see the gradients ``fit()`` would use.
"""

import keras
import numpy as np
import torch

torch.set_num_threads(1)

BACKEND = keras.backend.backend()
ATOL = 1e-6
RTOL = 1e-5


def value_and_grad(fn, x):
    """Value of the scalar ``fn(x)`` and its gradient with respect to ``x``, as NumPy arrays.

    ``x`` is a NumPy array (float32); ``fn`` takes a backend tensor and uses keras.ops.
    """
    x = np.asarray(x, dtype="float32")
    if BACKEND == "torch":
        tensor = torch.tensor(x, requires_grad=True)
        value = fn(tensor)
        (grad,) = torch.autograd.grad(value, tensor)
        return value.detach().cpu().numpy(), grad.detach().cpu().numpy()
    if BACKEND == "tensorflow":
        import tensorflow as tf

        tensor = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = fn(tensor)
        grad = tape.gradient(value, tensor)
        return value.numpy(), grad.numpy()
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        value, grad = jax.value_and_grad(fn)(jnp.asarray(x))
        return np.asarray(value), np.asarray(grad)
    raise NotImplementedError(f"no gradient helper for backend {BACKEND!r}")


def torch_value_and_grad(fn, x):
    """Same for a torch function, in float32 with torch's own autograd."""
    tensor = torch.tensor(np.asarray(x, dtype="float32"), requires_grad=True)
    value = fn(tensor)
    (grad,) = torch.autograd.grad(value, tensor)
    return value.detach().numpy(), grad.numpy()


def assert_close(actual, expected, atol=ATOL, rtol=RTOL, what=""):
    """``np.testing.assert_allclose`` with NaN == NaN and inf == inf, and a label."""
    actual = np.asarray(actual, dtype="float64")
    expected = np.asarray(expected, dtype="float64")
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch {expected.shape}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True, err_msg=what)


def weighted_sum(values, cotangent):
    """Scalar ``sum(values * cotangent)`` in keras.ops (to take vector-Jacobian products)."""
    return keras.ops.sum(values * keras.ops.convert_to_tensor(cotangent, dtype=values.dtype))
