"""The built-in networks, in flax.linen: the paper's MLP and a small CNN for images.

Initialisation as in the authors' code: weights from a normal truncated at two standard
deviations with ``stddev = 1/sqrt(fan_in)`` (TensorFlow's ``truncated_normal``), biases zero.
Both return ``(logits, layers)``: the layers T of the information plane, input to output, the
last being the softmax probabilities. Both can be quantized (``quantize = k`` bits: every hidden
activation and the softmax output, :mod:`ibjax.quantization`) or noise-injected
(``noise_std = beta``: called with a ``noise_key``, every measured hidden layer gets
independent N(0, beta^2) noise that feeds the next layer; the returned layers are the values
before their own noise, as the ``noisy`` estimator of :mod:`ibjax.mi` wants them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ibjax import initial_weights, native, native_products
from ibjax.config import ConfigError
from ibjax.quantization import quantize_activation

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "linear": lambda h: h,
}


def paper_kernel_init(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """Truncated normal on [-2, 2] standard deviations, ``stddev = 1/sqrt(fan_in)``.

    Within :func:`ibjax.initial_weights.drawing_bits` it returns the draw's raw bits instead
    (the runner builds ``init`` in two programs; the weights are the same).

    Args:
      shape: ``(fan_in, fan_out)`` for a dense layer, ``(height, width, in, out)`` for a
        convolution (fan_in = height * width * in).
    """
    bits = initial_weights.raw_bits(key, shape, dtype)  # the runner's first init program
    if bits is not None:
        return bits
    fan_in = math.prod(shape[:-1])
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) / jnp.sqrt(
        jnp.asarray(fan_in, dtype))


# layer_product="auto" writes a layer's product as a broadcast-and-sum on GPUs when it has at
# most this many weights: 2.7x faster training on one H100 for the paper network (largest
# layer 12 x 10 = 120 weights; benchmarks/epoch_cost.py). Larger layers keep the matrix
# product, which uses the GPU's matrix units; the threshold between the two was not measured.
BROADCAST_MAX_WEIGHTS = 256

# layer_product="auto" uses ibjax's native products on CPUs for layers of at most this many
# weights. Forward and backward of one layer, 16 vmapped seeds, batch 512, on a 2-core AMD EPYC,
# native against XLA's matmul: 0.80x the time at 12 x 10, 0.97-0.99x at 16 x 16 and 32 x 32,
# 1.33x at 64 x 64, 2.8x at 256 x 256 (the routines have no cache blocking).
NATIVE_MAX_WEIGHTS = 1024


def dense_product(kernel: jax.Array, h: jax.Array) -> jax.Array:
    """``kernel.T @ h`` in full float32: ``kernel`` ``[in, out]``, ``h`` ``[in, batch]``.

    Full float32 products on every platform (``Precision.HIGHEST``): GPUs would otherwise use
    TF32, and the same seed would bin differently there than on a CPU.
    """
    return jnp.matmul(kernel.T, h, precision=jax.lax.Precision.HIGHEST)


def broadcast_dense_product(kernel: jax.Array, h: jax.Array) -> jax.Array:
    """``kernel.T @ h`` as a broadcast multiply and a sum over ``in`` (float32, no matmul).

    Same shapes as :func:`dense_product`. XLA fuses it with the neighbouring elementwise work
    instead of calling a matrix-product library, one launch each: 2.7x faster training of the
    paper network on an H100, 5x slower on a CPU (``benchmarks/epoch_cost.py``).
    """
    return jnp.sum(kernel[:, :, None] * h[:, None, :], axis=0)


def layer_products(choice: str, shapes: list[tuple[int, int]], platform: str) -> tuple[str, ...]:
    """How each Dense layer computes its product: ``"matmul"``, ``"broadcast"`` or ``"native"``.

    Args:
      choice: one of ``ibjax.config.LAYER_PRODUCTS``; ``"auto"`` picks ``"native"`` on CPUs
        for layers of at most :data:`NATIVE_MAX_WEIGHTS` weights where
        :func:`ibjax.native.available`, ``"broadcast"`` on GPUs for layers of at most
        :data:`BROADCAST_MAX_WEIGHTS` weights, else ``"matmul"``.
      shapes: each layer's kernel shape ``(in, out)``, input to output.
      platform: the JAX platform the program runs on (``jax.Device.platform``: cpu, gpu, tpu).

    Raises:
      ConfigError: ``"native"`` asked for on another platform than cpu, or where it cannot be
        built (the message says why).
    """
    if choice == "native":
        if platform != "cpu":
            raise ConfigError(f"layer_product='native' runs on CPUs only, not on {platform}; "
                             "use 'auto', 'matmul' or 'broadcast'")
        if not native.available():
            raise ConfigError("layer_product='native' is not available here: "
                             f"{native.unavailable_reason()}")
    if choice != "auto":
        return tuple(choice for _ in shapes)
    if platform == "cpu":
        small, fast = NATIVE_MAX_WEIGHTS, "native" if native.available() else "matmul"
    else:
        small, fast = BROADCAST_MAX_WEIGHTS, "broadcast" if platform == "gpu" else "matmul"
    return tuple(fast if fan_in * fan_out <= small else "matmul" for fan_in, fan_out in shapes)


PRODUCT_FNS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "matmul": dense_product,
    "broadcast": broadcast_dense_product,
    "native": native_products.native_dense_product,
}


class FeatureMajorDense(nn.Module):
    """``kernel.T @ h + bias`` on features-major activations ``h`` of shape ``[in, batch]``.

    Parameters keep the usual layout (``kernel``: ``[in, out]``, ``bias``: ``[out]``). Keeping
    the batch as the contiguous axis makes XLA's CPU code several times faster for these tiny
    widths (3x measured on the paper network, 64 vmapped seeds). Products are full float32
    (not TF32), so a seed gives the same trajectory on CPU and GPU up to float rounding;
    ``product`` names how it is written (a key of :data:`PRODUCT_FNS`).
    """

    features: int
    product: str = "matmul"

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        kernel = self.param("kernel", paper_kernel_init, (h.shape[0], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return PRODUCT_FNS[self.product](kernel, h) + bias[:, None]


class MLP(nn.Module):
    """Hidden layers of the given widths, then a softmax layer of ``num_classes`` units.

    Features-major: ``__call__(x)`` takes ``x`` of shape ``[in_features, batch]`` and returns
    ``(logits, layers)``: logits ``[num_classes, batch]`` and a list with each hidden layer's
    activations ``[width, batch]`` followed by the softmax probabilities ``[num_classes, batch]``
    (the layers T of the information plane, input to output). Parameters are named
    ``Dense_0 ... Dense_L`` with ``kernel`` ``[in, out]`` and ``bias`` ``[out]``.
    ``products`` gives each Dense layer's product (see :func:`layer_products`); empty means
    ``"matmul"`` for all. ``quantize``: bits of every hidden activation and of the softmax
    output (0: none; the logits are not quantized). ``noise_std``: with ``noise_key`` given,
    N(0, noise_std^2) noise on every hidden layer (see the module docstring).
    """

    hidden: tuple[int, ...]
    num_classes: int
    activation: str = "tanh"
    products: tuple[str, ...] = ()
    quantize: int = 0
    noise_std: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array,
                 noise_key: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array]]:
        act = ACTIVATION_FNS[self.activation]
        layers = []
        h = x
        products = self.products or ("matmul",) * (len(self.hidden) + 1)
        for i, width in enumerate(self.hidden):
            h = act(FeatureMajorDense(width, products[i], name=f"Dense_{i}")(h))
            if self.quantize:
                h = quantize_activation(h, self.quantize, self.activation)
            layers.append(h)
            h = _add_noise(h, self.noise_std, noise_key, i)
        logits = FeatureMajorDense(self.num_classes, products[-1],
                                   name=f"Dense_{len(self.hidden)}")(h)
        probs = jax.nn.softmax(logits, axis=0)
        if self.quantize:
            probs = quantize_activation(probs, self.quantize, "softmax")
        layers.append(probs)
        return logits, layers


def _add_noise(h: jax.Array, noise_std: float, noise_key: jax.Array | None,
               index: int) -> jax.Array:
    """``h + noise_std * N(0, 1)`` drawn from ``fold_in(noise_key, index)``; ``h`` without a
    key."""
    if noise_key is None:
        return h
    return h + noise_std * jax.random.normal(jax.random.fold_in(noise_key, index), h.shape,
                                             h.dtype)


def layer_names(num_hidden: int) -> list[str]:
    """Flax parameter names of the Dense layers, input to output (``Dense_0`` ...)."""
    return [f"Dense_{i}" for i in range(num_hidden + 1)]


class CNN(nn.Module):
    """A small convolutional network for images: conv-pool-conv-pool-dense-dense.

    Samples-major: ``__call__(x)`` takes images ``[batch, height, width, channels]`` and returns
    ``(logits, layers)``: logits ``[batch, num_classes]`` and the four measured layers, each
    ``[batch, ...]`` (flattened per sample for MI): the first convolution after pooling, the
    second after pooling, the dense hidden layer and the softmax probabilities. Convolutions
    are 3 x 3 with ``SAME`` padding, pooling is 2 x 2 max pooling with stride 2.

    Attributes:
      channels: channels of the two convolutions.
      dense: width of the dense hidden layer.
      num_classes: softmax width.
      activation: hidden activation (``tanh``, ``relu`` or ``linear``).
      quantize: bits of every hidden activation and of the softmax output (0: none).
      noise_std: with a ``noise_key``, N(0, noise_std^2) noise on each measured hidden layer
        (after pooling for the convolutions).
    """

    channels: tuple[int, int] = (8, 16)
    dense: int = 32
    num_classes: int = 10
    activation: str = "tanh"
    quantize: int = 0
    noise_std: float = 0.0

    layer_names: ClassVar[tuple[str, ...]] = ("conv 1", "conv 2", "dense", "softmax output")
    layer_param_names: ClassVar[tuple[str, ...]] = ("Conv_0", "Conv_1", "Dense_0", "Dense_1")

    @nn.compact
    def __call__(self, x: jax.Array,
                 noise_key: jax.Array | None = None) -> tuple[jax.Array, list[jax.Array]]:
        act = ACTIVATION_FNS[self.activation]

        def activate(h):
            h = act(h)
            return quantize_activation(h, self.quantize, self.activation) if self.quantize \
                else h

        layers = []
        h = x
        for index, channels in enumerate(self.channels):
            h = nn.Conv(channels, (3, 3), padding="SAME", kernel_init=paper_kernel_init,
                        precision=jax.lax.Precision.HIGHEST)(h)
            h = nn.max_pool(activate(h), (2, 2), strides=(2, 2))
            layers.append(h)
            h = _add_noise(h, self.noise_std, noise_key, index)
        h = h.reshape(h.shape[0], -1)
        h = activate(nn.Dense(self.dense, kernel_init=paper_kernel_init,
                              precision=jax.lax.Precision.HIGHEST)(h))
        layers.append(h)
        h = _add_noise(h, self.noise_std, noise_key, len(self.channels))
        logits = nn.Dense(self.num_classes, kernel_init=paper_kernel_init,
                          precision=jax.lax.Precision.HIGHEST)(h)
        probs = jax.nn.softmax(logits, axis=-1)
        if self.quantize:
            probs = quantize_activation(probs, self.quantize, "softmax")
        layers.append(probs)
        return logits, layers
