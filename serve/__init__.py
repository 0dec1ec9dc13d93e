"""Serving side of kerasnn: onnxruntime only, never Keras, torch, TensorFlow or JAX."""
