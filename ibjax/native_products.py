"""A dense layer's product through ibjax's own CPU routines (``native_products.cc``).

XLA's CPU dot is slow for the paper network's products (per seed ``[10, 12] x [12, 512]``
and smaller, vmapped over seeds): they were ~75 % of a training step. ``native_products.cc``
implements the three products of a dense layer (forward, and the two of its gradient) as XLA
FFI handlers, register-blocked on 8-float vectors, that loop over the vmapped seeds; the
program calls them as custom calls (``layer_product="native"``, the CPU default where they
build, for layers of at most ``ibjax.model.NATIVE_MAX_WEIGHTS`` weights). The library is built
on first use (:mod:`ibjax.native`); where it cannot be, ``layer_product="auto"`` uses XLA's
matrix product instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ibjax import native
from ibjax.native import DENSE_BACKWARD_INPUT, DENSE_BACKWARD_KERNEL, DENSE_FORWARD


def _call(target: str, shape: tuple[int, ...], a: jax.Array, b: jax.Array) -> jax.Array:
    # broadcast_all: under vmap every operand gets the same leading batch dimensions, which
    # the handlers loop over (one call for all seeds).
    return jax.ffi.ffi_call(target, jax.ShapeDtypeStruct(shape, jnp.float32),
                            vmap_method="broadcast_all")(a, b)


@jax.custom_vjp
def native_dense_product(kernel: jax.Array, h: jax.Array) -> jax.Array:
    """``kernel.T @ h`` by the native CPU routines: ``kernel`` ``[in, out]``, ``h`` ``[in, batch]``.

    Float32 (other dtypes are cast), differentiable (reverse mode) and vmappable; runs on
    CPUs only. Summation order is fixed, so a seed's products are bitwise the same alone or
    vmapped with others.

    Raises:
      RuntimeError: ibjax's native routines cannot be built here (the reason said).
    """
    native.require("native_dense_product")
    return _call(DENSE_FORWARD, (kernel.shape[1], h.shape[1]), kernel.astype(jnp.float32),
                 h.astype(jnp.float32))


def _forward(kernel, h):
    return native_dense_product(kernel, h), (kernel, h)


def _backward(residuals, grad_out):
    kernel, h = residuals
    grad_out = grad_out.astype(jnp.float32)
    grad_kernel = _call(DENSE_BACKWARD_KERNEL, kernel.shape, h.astype(jnp.float32), grad_out)
    grad_h = _call(DENSE_BACKWARD_INPUT, h.shape, kernel.astype(jnp.float32), grad_out)
    return grad_kernel.astype(kernel.dtype), grad_h.astype(h.dtype)


native_dense_product.defvjp(_forward, _backward)
