"""Copy weights between torch modules and the equivalent Keras models.

A torch network made of ``nn.Linear`` and ``nn.BatchNorm1d`` layers (an
``nn.Sequential``, any module with such children, or its ``state_dict()``)
corresponds to a Keras model whose ``Linear`` (or ``Dense``) and
:class:`kerasnn.layers.BatchNorm1d` layers come in the same order. Other layers
(activations, dropout) carry no weights and are skipped on both sides.

Layouts::

    nn.Linear.weight  [out, in]  <->  Dense.kernel  [in, out]   (transposed)
    nn.Linear.bias    [out]      <->  Dense.bias    [out]
    nn.BatchNorm1d.weight, bias, running_mean, running_var
                                 <->  BatchNorm1d gamma, beta, running_mean, running_var

``num_batches_tracked`` is not copied (it only matters for torch's ``momentum=None``).
The Keras model must be built. Mismatched structures or shapes raise ``ValueError``
naming the layers and the shapes. torch is imported lazily (it is an optional extra).
"""

from collections.abc import Mapping

import keras
import numpy as np

from kerasnn.layers import BatchNorm1d

__all__ = ["keras_to_torch", "torch_to_keras"]

_BN_KEYS = ("weight", "bias", "running_mean", "running_var")


def _torch():
    try:
        import torch
    except ModuleNotFoundError as error:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "kerasnn.interop needs PyTorch: pip install 'kerasnn[torch]'", name=error.name
        ) from error
    return torch


# ----------------------------------------------------------------------------- torch side


def _torch_layers_from_module(module):
    """[(name, kind, {key: tensor or None}, module or None)] for nn.Linear / nn.BatchNorm1d."""
    torch = _torch()
    layers = []
    for name, sub in module.named_modules():
        if isinstance(sub, torch.nn.Linear):
            layers.append((name, "Linear", {"weight": sub.weight, "bias": sub.bias}, sub))
        elif isinstance(sub, torch.nn.BatchNorm1d):
            tensors = {key: getattr(sub, key) for key in _BN_KEYS}
            layers.append((name, "BatchNorm1d", tensors, sub))
        elif isinstance(sub, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.conv._ConvNd)):
            raise ValueError(  # noqa: TRY004 - a structure mismatch, not a wrong argument type
                f"torch layer '{name}' ({type(sub).__name__}) has no Keras counterpart in kerasnn.interop: "
                "only nn.Linear and nn.BatchNorm1d are supported."
            )
    return layers


def _torch_layers_from_state_dict(state_dict):
    groups = {}
    for key, value in state_dict.items():
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = value
    layers = []
    for prefix, tensors in groups.items():
        name = prefix or "<root>"
        weight = tensors.get("weight")
        if "running_mean" in tensors or (weight is not None and weight.ndim == 1):
            unknown = set(tensors) - set(_BN_KEYS) - {"num_batches_tracked"}
            if unknown:
                raise ValueError(
                    f"state_dict entry '{name}': unexpected keys {sorted(unknown)} for a BatchNorm1d"
                )
            layers.append((name, "BatchNorm1d", {key: tensors.get(key) for key in _BN_KEYS}, None))
        elif weight is not None and weight.ndim == 2:
            unknown = set(tensors) - {"weight", "bias"}
            if unknown:
                raise ValueError(f"state_dict entry '{name}': unexpected keys {sorted(unknown)} for a Linear")
            layers.append((name, "Linear", {"weight": weight, "bias": tensors.get("bias")}, None))
        else:
            raise ValueError(
                f"state_dict entry '{name}' (keys {sorted(tensors)}, shapes "
                f"{ {k: tuple(v.shape) for k, v in tensors.items()} }) is neither an nn.Linear "
                "(2-D weight) nor an nn.BatchNorm1d."
            )
    return layers


def _torch_layers(source):
    torch = _torch()
    if isinstance(source, torch.nn.Module):
        return _torch_layers_from_module(source)
    if isinstance(source, Mapping):
        return _torch_layers_from_state_dict(source)
    raise ValueError(
        f"`source`/`target` must be a torch.nn.Module or its state_dict(). Received: {type(source).__name__}"
    )


# ----------------------------------------------------------------------------- keras side


def _keras_layers(model):
    if not model.built:
        raise ValueError(
            f"Keras model '{model.name}' is not built: call it on a batch or create it with an Input shape."
        )
    found = []

    def visit(layer):
        if isinstance(layer, keras.layers.Dense):
            found.append(("Linear", layer))
        elif isinstance(layer, BatchNorm1d):
            found.append(("BatchNorm1d", layer))
        elif isinstance(layer, keras.layers.BatchNormalization):
            raise ValueError(  # noqa: TRY004 - a structure mismatch, not a wrong argument type
                f"Keras layer '{layer.name}' is a keras.layers.BatchNormalization, whose momentum, epsilon "
                "and running variance differ from torch: use kerasnn.layers.BatchNorm1d."
            )
        elif hasattr(layer, "layers"):
            for child in layer.layers:
                visit(child)
        else:
            for child in getattr(layer, "_layers", []):
                visit(child)

    if isinstance(model, (keras.layers.Dense, BatchNorm1d)):
        visit(model)
    else:
        for layer in model.layers:
            visit(layer)
    return found


def _keras_arrays(kind, layer):
    if kind == "Linear":
        return {"weight": layer.kernel, "bias": layer.bias if layer.use_bias else None}
    return {
        "weight": layer.gamma,
        "bias": layer.beta,
        "running_mean": layer.running_mean,
        "running_var": layer.running_var,
    }


def _pairs(keras_model, torch_source):
    torch_layers = _torch_layers(torch_source)
    keras_layers = _keras_layers(keras_model)
    if len(torch_layers) != len(keras_layers) or any(
        t[1] != k[0] for t, k in zip(torch_layers, keras_layers, strict=False)
    ):
        raise ValueError(
            "The weighted layers do not correspond. torch: "
            f"{[f'{name or type(mod).__name__}:{kind}' for name, kind, _, mod in torch_layers]}; Keras: "
            f"{[f'{layer.name}:{kind}' for kind, layer in keras_layers]}"
        )
    for (t_name, kind, t_tensors, t_module), (_, layer) in zip(torch_layers, keras_layers, strict=True):
        k_vars = _keras_arrays(kind, layer)
        for key, k_var in k_vars.items():
            t_tensor = t_tensors[key]
            if (k_var is None) != (t_tensor is None):
                what = {
                    "weight": "affine weight",
                    "bias": "bias",
                    "running_mean": "running statistics",
                    "running_var": "running statistics",
                }[key]
                raise ValueError(
                    f"Keras layer '{layer.name}' and torch layer '{t_name}' ({kind}) differ: "
                    f"{what} present in {'Keras' if t_tensor is None else 'torch'} only."
                )
            if k_var is None:
                continue
            t_shape = tuple(t_tensor.shape)
            k_shape = tuple(k_var.shape)
            expected = tuple(reversed(t_shape)) if (kind == "Linear" and key == "weight") else t_shape
            if k_shape != expected:
                layout = (
                    " (torch [out, in] is Keras [in, out])" if kind == "Linear" and key == "weight" else ""
                )
                raise ValueError(
                    f"Shape mismatch between Keras layer '{layer.name}' and torch layer '{t_name}' "
                    f"({kind} {key}): Keras {k_shape}, torch {t_shape}{layout}."
                )
        yield t_name, kind, t_tensors, t_module, layer, k_vars


def torch_to_keras(source, keras_model):
    """Copy the weights of a torch module (or its ``state_dict()``) into ``keras_model``.

    Args:
        source: an ``nn.Module`` containing ``nn.Linear``/``nn.BatchNorm1d`` layers, or
            its state dict.
        keras_model: a built Keras model (or layer) with the corresponding ``Linear``
            (``Dense``) and ``BatchNorm1d`` layers in the same order.

    Returns:
        ``keras_model``, updated in place.
    """
    for _, kind, t_tensors, _, _, k_vars in list(_pairs(keras_model, source)):
        for key, k_var in k_vars.items():
            if k_var is None:
                continue
            array = t_tensors[key].detach().cpu().numpy().astype(k_var.dtype)
            if kind == "Linear" and key == "weight":
                array = array.T
            k_var.assign(array)
    return keras_model


def keras_to_torch(keras_model, target):
    """Copy the weights of ``keras_model`` into a torch module or a state dict.

    Args:
        keras_model: a built Keras model (or layer) with ``Linear`` (``Dense``) and
            ``BatchNorm1d`` layers.
        target: an ``nn.Module`` with the corresponding ``nn.Linear``/``nn.BatchNorm1d``
            layers in the same order (updated in place), or a state dict giving the
            structure (not modified).

    Returns:
        The module (for a module), else a new state dict with the same keys, the
        Keras weights in place of the corresponding tensors and the other entries
        (e.g. ``num_batches_tracked``) copied.
    """
    torch = _torch()
    pairs = list(_pairs(keras_model, target))
    updates = {}
    for t_name, kind, t_tensors, _, _, k_vars in pairs:
        for key, k_var in k_vars.items():
            if k_var is None:
                continue
            array = np.asarray(keras.ops.convert_to_numpy(k_var))
            if kind == "Linear" and key == "weight":
                array = array.T
            t_tensor = t_tensors[key]
            updates[(t_name, key)] = (
                t_tensor,
                torch.as_tensor(np.ascontiguousarray(array), dtype=t_tensor.dtype),
            )
    if isinstance(target, torch.nn.Module):
        with torch.no_grad():
            for t_tensor, value in updates.values():
                t_tensor.copy_(value)
        return target
    result = {}
    for key, value in target.items():
        prefix, _, leaf = key.rpartition(".")
        update = updates.get((prefix or "<root>", leaf))
        result[key] = update[1].to(value.device) if update is not None else value.clone()
    return result
