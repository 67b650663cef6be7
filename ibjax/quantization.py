"""k-bit quantized activations with straight-through gradients, for quantized networks.

Lorenzen, Igel & Nielsen (2022), "Information bottleneck: exact analysis of (quantized) neural
networks", ICLR: when every layer takes finitely many values, I(X;T) and I(T;Y) are computed
exactly by counting (the ``exact`` estimator of :mod:`ibjax.mi`).

The rule (uniform quantization over the activation's range, ``2**bits`` levels)::

    step = (hi - lo) / (2**bits - 1)
    q(t) = lo + round((clip(t, lo, hi) - lo) / step) * step

with ``(lo, hi)`` fixed for bounded activations (tanh: ``(-1, 1)``, softmax probabilities:
``(0, 1)``) and, for unbounded ones (ReLU, linear), the range of the layer's own values in
that forward pass, widened to contain 0: ``(min(0, min t), max(0, max t))`` over the whole
layer (all units, all rows of the batch; per seed under ``vmap``). The gradient is the
straight-through estimator: the identity, as if ``q(t) = t``.

Where this differs from Lorenzen et al.'s code (TensorFlow's ``fake_quant`` via
``tensorflow_model_optimization``): they quantize a tanh layer over its batch ``[min, max]``
(ibjax: the fixed ``[-1, 1]``, so a level means the same value in every batch); ReLU and
softmax layers over a moving average of the batches' ranges (ibjax: the current pass's range,
stateless); they also quantize the weights of ReLU and softmax layers to k bits (ibjax keeps
float32 weights: the counted states are the activations, which the rule above makes
discrete); TensorFlow nudges the range so that 0 is a level (ibjax does not).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MAX_BITS = 16
"""Most bits per activation (65,536 levels)."""

ACTIVATION_RANGES: dict[str, tuple[float, float]] = {"tanh": (-1.0, 1.0),
                                                     "softmax": (0.0, 1.0)}
"""Fixed quantization ranges of bounded activations; others use the pass's own range."""


def quantize(t: jax.Array, bits: int,
             value_range: tuple[float, float] | None = None) -> jax.Array:
    """``t`` quantized to ``2**bits`` uniform levels, straight-through gradient.

    Args:
      t: activations, any shape (one layer of one network; the range rule looks at all of it).
        Integers and floats narrower than float32 are quantized in float32 (float16 cannot
        hold 2**16 levels), and the result is float32 then.
      bits: k in ``[1, 16]``.
      value_range: ``(lo, hi)``, finite, ``lo < hi``; None: ``(min(0, min t), max(0, max t))``
        of ``t`` itself.

    Returns:
      An array like ``t`` whose values are exactly ``lo + i * step`` for integers ``i`` in
      ``[0, 2**bits - 1]`` (computed the same way for equal ``i``, so equal levels are equal
      floats); its gradient with respect to ``t`` is the identity.

    Raises:
      ValueError: ``bits`` or ``value_range`` not allowed (named), before anything is traced.
    """
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)) or not (
            1 <= bits <= MAX_BITS):
        raise ValueError(f"bits must be an integer in [1, {MAX_BITS}], got {bits!r}")
    bits = int(bits)
    if value_range is not None:
        value_range = _checked_range(value_range)
    t = jnp.asarray(t)
    if not jnp.issubdtype(t.dtype, jnp.floating) or jnp.finfo(t.dtype).bits < 32:
        t = t.astype(jnp.float32)
    if value_range is None:
        frozen = jax.lax.stop_gradient(t)
        lo = jnp.minimum(jnp.min(frozen), 0.0)
        hi = jnp.maximum(jnp.max(frozen), 0.0)
    else:
        lo, hi = (jnp.asarray(v, t.dtype) for v in value_range)
    levels = 2**bits - 1
    step = jnp.where(hi > lo, (hi - lo) / levels, 1.0)
    index = jnp.round((jnp.clip(jax.lax.stop_gradient(t), lo, hi) - lo) / step)
    q = lo + index * step
    # q + (t - t): the value is exactly q, the gradient the identity (t + (q - t) would round).
    return q + (t - jax.lax.stop_gradient(t))


def _checked_range(value_range) -> tuple[float, float]:
    """``value_range`` as a pair of finite floats with lo < hi; else ValueError naming it."""
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be None or a pair (lo, hi) of numbers, got "
                         f"{value_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"value_range must be finite with lo < hi, got ({lo}, {hi})")
    return lo, hi


def quantize_activation(t: jax.Array, bits: int, activation: str) -> jax.Array:
    """:func:`quantize` with the range rule of ``activation`` (``tanh``, ``relu``, ``linear``,
    ``softmax``); see the module docstring."""
    return quantize(t, bits, ACTIVATION_RANGES.get(activation))
