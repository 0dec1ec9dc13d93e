"""kerasnn.interop: torch <-> Keras weight copies, checked by running both networks."""

import os
import sys

import keras
import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))
from parity_utils import assert_close

from kerasnn.interop import keras_to_torch, torch_to_keras
from kerasnn.layers import BatchNorm1d, Dropout, Linear


def torch_mlp():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 8),
        torch.nn.BatchNorm1d(8),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.3),
        torch.nn.Linear(8, 3),
    )
    with torch.no_grad():  # non-trivial BatchNorm state
        net[1].weight.uniform_(0.5, 2)
        net[1].bias.normal_()
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2)
    return net.eval()


def keras_mlp(hidden=8, out=3):
    return keras.Sequential(
        [keras.Input((5,)), Linear(hidden), BatchNorm1d(), keras.layers.ReLU(), Dropout(0.3), Linear(out)]
    )


X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def run_torch(net, x=X):
    with torch.no_grad():
        return net(torch.tensor(x)).numpy()


def test_torch_to_keras_gives_the_same_network():
    net, model = torch_mlp(), keras_mlp()
    assert torch_to_keras(net, model) is model
    assert_close(keras.ops.convert_to_numpy(model(X)), run_torch(net), what="eval outputs")
    kernel = model.layers[0].get_weights()[0]
    assert kernel.shape == (5, 8)
    assert_close(kernel, net[0].weight.detach().numpy().T)


def test_state_dict_source_and_round_trip():
    net, model = torch_mlp(), keras_mlp()
    torch_to_keras(net.state_dict(), model)
    assert_close(keras.ops.convert_to_numpy(model(X)), run_torch(net))
    # train the Keras copy a little (moves weights and running stats), then copy back
    model(X, training=True)
    model.layers[0].kernel.assign(model.layers[0].kernel * 1.5)
    other = torch_mlp()
    assert keras_to_torch(model, other) is other
    assert_close(run_torch(other), keras.ops.convert_to_numpy(model(X)), what="keras -> torch outputs")
    state = keras_to_torch(model, net.state_dict())
    assert list(state) == list(net.state_dict())
    assert_close(state["1.running_mean"].numpy(), model.layers[1].running_mean.numpy())
    assert_close(state["0.weight"].numpy(), model.layers[0].kernel.numpy().T)
    assert state["1.num_batches_tracked"] == net.state_dict()["1.num_batches_tracked"]
    # the state dict given as structure is not modified
    assert not np.allclose(net.state_dict()["0.weight"].numpy(), state["0.weight"].numpy())


def test_module_with_children_and_nested_keras_model():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(5, 4, bias=False)
            self.bn = torch.nn.BatchNorm1d(4, affine=False)
            self.fc2 = torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(torch.relu(self.bn(self.fc1(x))))

    net = Net().eval()
    with torch.no_grad():
        net.bn.running_mean.normal_()
    inner = keras.Sequential([keras.Input((5,)), Linear(4, use_bias=False), BatchNorm1d(affine=False)])
    model = keras.Sequential([keras.Input((5,)), inner, keras.layers.ReLU(), Linear(2)])
    torch_to_keras(net, model)
    assert_close(keras.ops.convert_to_numpy(model(X)), run_torch(net))


def test_mismatches_raise_clear_value_errors():
    net = torch_mlp()
    with pytest.raises(ValueError, match=r"Shape mismatch.*'linear.*Keras \(5, 9\), torch \(8, 5\)"):
        torch_to_keras(net, keras_mlp(hidden=9))
    with pytest.raises(ValueError, match="do not correspond"):
        torch_to_keras(net, keras.Sequential([keras.Input((5,)), Linear(8), Linear(3)]))
    no_bias = keras.Sequential([keras.Input((5,)), Linear(8, use_bias=False), BatchNorm1d(), Linear(3)])
    with pytest.raises(ValueError, match="bias present in torch only"):
        torch_to_keras(net, no_bias)
    with pytest.raises(ValueError, match="not built"):
        torch_to_keras(net, keras.Sequential([Linear(8), BatchNorm1d(), Linear(3)]))
    keras_bn = keras.Sequential([keras.Input((5,)), Linear(8), keras.layers.BatchNormalization(), Linear(3)])
    with pytest.raises(ValueError, match="BatchNormalization"):
        torch_to_keras(net, keras_bn)
    with pytest.raises(ValueError, match="Module or its state_dict"):
        torch_to_keras([1, 2], keras_mlp())
