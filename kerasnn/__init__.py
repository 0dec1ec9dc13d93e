"""kerasnn: PyTorch-faithful deep-learning building blocks for Keras 3.

Importing the package does not import Keras: the submodules do (``kerasnn.losses``,
``kerasnn.layers``, ``kerasnn.optimizers``, ``kerasnn.schedules``, ``kerasnn.models``),
so the serving side (``kerasnn.serve``) runs without any Keras backend installed.
"""

__version__ = "0.1.0"
