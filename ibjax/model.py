"""The paper's network: a fully connected MLP with a softmax output, in flax.linen.

Initialisation as in the authors' code: weights from a normal truncated at two standard
deviations with ``stddev = 1/sqrt(fan_in)`` (TensorFlow's ``truncated_normal``), biases zero.
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda h: h,
}


def paper_kernel_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Truncated normal on [-2, 2] standard deviations, ``stddev = 1/sqrt(fan_in)``.

    Args:
      shape: ``(fan_in, fan_out)``.
    """
    fan_in = shape[0]
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) / jnp.sqrt(
        jnp.asarray(fan_in, dtype))


class MLP(nn.Module):
    """Hidden layers of the given widths, then a softmax layer of ``num_classes`` units.

    ``__call__(x)`` with ``x`` of shape ``[batch, in_features]`` returns
    ``(logits, layers)``: logits ``[batch, num_classes]`` and a list with each hidden layer's
    activations ``[batch, width]`` followed by the softmax probabilities ``[batch, num_classes]``
    (the layers T of the information plane, in order).
    """

    hidden: tuple[int, ...]
    num_classes: int
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
        act = ACTIVATION_FNS[self.activation]
        layers = []
        h = x
        for width in self.hidden:
            h = act(nn.Dense(width, kernel_init=paper_kernel_init)(h))
            layers.append(h)
        logits = nn.Dense(self.num_classes, kernel_init=paper_kernel_init)(h)
        layers.append(jax.nn.softmax(logits))
        return logits, layers


def layer_names(num_hidden: int) -> list[str]:
    """Flax parameter names of the Dense layers, input to output (``Dense_0`` ...)."""
    return [f"Dense_{i}" for i in range(num_hidden + 1)]
