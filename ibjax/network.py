"""A model as the trainer sees it: init, apply, layout, and which weights each measured layer
owns (for the per-layer gradient statistics).

Two layouts: the built-in MLP works features-major (``x`` ``[features, batch]``, layers
``[width, batch]``: three times faster on a CPU for the paper's tiny widths), every other model
samples-major (``x`` ``[batch, *input_shape]``, logits ``[batch, classes]``, layers
``[batch, ...]``, flattened per sample for MI), as flax models usually are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ibjax.config import Config, ConfigError
from ibjax.model import CNN, MLP, layer_names, layer_products


class Network(NamedTuple):
    """A model, ready for the trainer.

    Attributes:
      init: ``init(key, x) -> params`` for one batch ``x`` in the network's layout.
      apply: ``apply(params, x) -> (logits, layers)``.
      features_major: True for the MLP's layout (see the module docstring).
      layer_kernels: ``layer_kernels(grads) -> list`` of each measured layer's weight
        gradients (one array per layer), for the gradient statistics.
      layer_names: the measured layers' names, input to output.
      layer_products: each Dense layer's product for the MLP (``"matmul"``, ``"broadcast"``,
        ``"native"``), empty for other models.
      input_shape: one sample's shape as the model takes it.
      noisy_apply: ``noisy_apply(params, x, key) -> (logits, layers)`` with Gaussian noise on
        every hidden layer drawn from ``key`` (layers before their own noise), for
        ``config.noise_std``; None when the model has no noise.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    apply: Callable[[Any, jax.Array], tuple[jax.Array, list[jax.Array]]]
    features_major: bool
    layer_kernels: Callable[[Any], list[jax.Array]]
    layer_names: tuple[str, ...]
    layer_products: tuple[str, ...]
    input_shape: tuple[int, ...]
    noisy_apply: Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, list[jax.Array]]] | \
        None = None


def make_network(config: Config, num_features: int, num_classes: int,
                 input_shape: tuple[int, ...], platform: str,
                 model: nn.Module | None = None) -> Network:
    """The :class:`Network` of ``config.model`` (or of ``model``, a user's flax module).

    Args:
      num_features: input width (features per row as stored, ``prod(input_shape)``).
      num_classes: softmax width.
      input_shape: one sample's shape (``(features,)``, or ``(height, width, channels)`` for
        images).
      platform: the JAX platform the program runs on (decides ``layer_product="auto"``).
      model: a flax module whose ``__call__(x)`` returns ``(logits, layers)``; overrides
        ``config.model``.

    Raises:
      ConfigError: the model does not suit the data, or its layers' weights cannot be told
        apart.
    """
    if model is not None:
        if config.quantize is not None or config.noise_std is not None:
            raise ConfigError(
                "quantize and noise_std apply to the built-in mlp and cnn; quantize or add "
                "noise inside your own module (ibjax.quantize) and measure it with "
                "ibjax.make_recorder(quantize=..., noise_std=...)")
        return flax_network(model, input_shape, num_classes)
    quantize, noise_std = config.quantize or 0, config.noise_std or 0.0
    if config.model == "mlp":
        widths = (*config.hidden, num_classes)
        shapes = list(zip((num_features, *config.hidden), widths, strict=True))
        products = layer_products(config.layer_product, shapes, platform)
        mlp = MLP(hidden=config.hidden, num_classes=num_classes,
                  activation=config.activation, products=products, quantize=quantize,
                  noise_std=noise_std)
        names = layer_names(len(config.hidden))
        hidden = [f"hidden {i + 1}" for i in range(len(config.hidden))]
        return Network(
            init=mlp.init, apply=mlp.apply, features_major=True,
            layer_kernels=lambda grads: [grads["params"][name]["kernel"] for name in names],
            layer_names=(*hidden, "softmax output"), layer_products=products,
            input_shape=(num_features,), noisy_apply=mlp.apply if noise_std else None)
    if config.model == "cnn":
        if len(input_shape) != 3:
            raise ConfigError(
                f"model='cnn' needs images, [height, width, channels] per sample; this data "
                f"has samples of shape {input_shape} (use model='mlp', or data such as "
                f"'digits' or MNIST)")
        channels1, channels2, dense = config.hidden
        cnn = CNN(channels=(channels1, channels2), dense=dense, num_classes=num_classes,
                  activation=config.activation, quantize=quantize, noise_std=noise_std)
        return flax_network(cnn, input_shape, num_classes)._replace(
            noisy_apply=cnn.apply if noise_std else None)
    raise ConfigError(f"model {config.model!r} needs the flax module passed as run(model=...)")


def flax_network(module: nn.Module, input_shape: tuple[int, ...],
                 num_classes: int) -> Network:
    """A samples-major :class:`Network` of a flax module returning ``(logits, layers)``.

    Each measured layer's weights for the gradient statistics: the module's
    ``layer_param_names`` (one top-level parameter name per layer) if it has that attribute;
    otherwise its top-level parameters in definition order, when there is one per layer. The
    gradient of each is that parameter group's ``kernel`` (all its leaves if it has none).

    Raises:
      ConfigError: the module does not return ``(logits [batch, num_classes], layers)``, or its
        parameters cannot be matched to its layers.
    """
    batch = 3  # a probe batch that no layer size is likely to equal by accident
    example = jnp.zeros((batch, *input_shape), jnp.float32)
    model = type(module).__name__
    try:
        params = jax.eval_shape(module.init, jax.random.key(0), example)
        out = jax.eval_shape(module.apply, params, example)
    except Exception as err:  # a user's module may fail in many ways
        raise ConfigError(
            f"model {model}: calling it on a batch of shape {example.shape} failed "
            f"({type(err).__name__}: {err}); ibjax.run trains modules without mutable state "
            f"(no BatchNorm statistics) or random numbers (no Dropout): measure such models "
            f"in your own loop with ibjax.make_recorder") from None
    if not isinstance(out, tuple) or len(out) != 2:
        raise ConfigError(f"model {model} must return (logits, layers), got "
                          f"{type(out).__name__}")
    logits, layers = out
    if not hasattr(logits, "shape") or logits.shape != (batch, num_classes) or not isinstance(
            layers, (list, tuple)) or not layers:
        raise ConfigError(f"model {model} must return (logits [batch, {num_classes}], "
                          f"[layer, ...]) with at least one layer")
    for index, layer in enumerate(layers):
        if not hasattr(layer, "shape") or len(layer.shape) < 1 or layer.shape[0] != batch:
            raise ConfigError(f"model {model}: layer {index} must be [batch, ...] (one row "
                              f"per sample), got shape {getattr(layer, 'shape', None)} for a "
                              f"batch of {batch}")
    groups = list(params.get("params", {}))
    names = getattr(module, "layer_param_names", None)
    if names is None:
        if len(groups) != len(layers):
            raise ConfigError(
                f"model {type(module).__name__}: cannot tell which weights belong to each of "
                f"its {len(layers)} measured layers (it has {len(groups)} parameter groups: "
                f"{', '.join(groups)}); give it a class attribute layer_param_names naming "
                f"one top-level parameter group per layer")
        names = tuple(groups)
    names = tuple(names)
    missing = [name for name in names if name not in groups]
    if len(names) != len(layers) or missing:
        raise ConfigError(f"model {type(module).__name__}: layer_param_names must name one of "
                          f"its parameter groups ({', '.join(groups)}) for each of its "
                          f"{len(layers)} layers; got {names}")

    def layer_kernels(grads) -> list[jax.Array]:
        kernels = []
        for name in names:
            group = grads["params"][name]
            leaves = [v for path, v in jax.tree_util.tree_leaves_with_path(group)
                      if getattr(path[-1], "key", None) == "kernel"] or jax.tree.leaves(group)
            kernels.append(jnp.concatenate([leaf.reshape(-1) for leaf in leaves]))
        return kernels

    layer_labels = tuple(getattr(module, "layer_names", None)
                         or (f"layer {i + 1}" for i in range(len(layers))))
    if len(layer_labels) != len(layers):
        raise ConfigError(f"model {type(module).__name__}: layer_names has "
                          f"{len(layer_labels)} names for {len(layers)} layers")
    return Network(init=module.init, apply=module.apply, features_major=False,
                   layer_kernels=layer_kernels,
                   layer_names=layer_labels,
                   layer_products=(), input_shape=tuple(input_shape))
