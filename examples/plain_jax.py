"""A model in plain ``jax.numpy`` (no flax, no optax), measured in-graph by ibjax's recorder.

The same loop as ``own_flax_model.py``, written with nothing but JAX: a 64-32-16-10 tanh
network on the 8 x 8 digits, parameters in a dict, minibatch SGD with momentum by hand, eight
seeds vmapped. ibjax only measures: ``recorder.record`` inside the scanned epoch, and
``recorder.to_dataset`` at the end::

    python examples/plain_jax.py --out runs/plain_jax
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ibjax

WIDTHS = (64, 32, 16, 10)


def init(key):
    """Weights ~ N(0, 1/fan_in), zero biases: ``{"w0": [64, 32], "b0": [32], ...}``."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(WIDTHS[:-1], WIDTHS[1:], strict=True)):
        key, key_w = jax.random.split(key)
        params[f"w{i}"] = jax.random.normal(key_w, (fan_in, fan_out)) / jnp.sqrt(fan_in)
        params[f"b{i}"] = jnp.zeros(fan_out)
    return params


def forward(params, x):
    """``x`` [batch, 64] -> logits [batch, 10] and the measured layers (two tanh, softmax)."""
    h1 = jnp.tanh(x @ params["w0"] + params["b0"])
    h2 = jnp.tanh(h1 @ params["w1"] + params["b1"])
    logits = h2 @ params["w2"] + params["b2"]
    return logits, [h1, h2, jax.nn.softmax(logits)]


def cross_entropy(logits, y):
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results and figures")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    digits = ibjax.load_digits()
    x_all, y_all = jnp.asarray(digits.x), jnp.asarray(digits.y)  # [1797, 64], [1797]
    order = np.random.default_rng(0).permutation(len(digits.y))
    train_rows = jnp.asarray(order[:1437])
    is_test = jnp.zeros(len(digits.y), bool).at[order[1437:]].set(True)
    num_batches = len(train_rows) // args.batch_size
    recorder = ibjax.make_recorder(
        "log:60", digits.y, ("binning", "binning-width", "kde-upper"), num_epochs=args.epochs,
        layer_names=("hidden 1", "hidden 2", "softmax output"), bin_width=0.07,
        kde_variance=1e-2, model_name="plain-jax-mlp", data_name="digits")

    def measured(params):
        logits, layers = forward(params, x_all)
        losses = -jnp.take_along_axis(jax.nn.log_softmax(logits), y_all[:, None], axis=1)[:, 0]
        correct = (jnp.argmax(logits, axis=-1) == y_all).astype(jnp.float32)

        def mean(values, mask):
            return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)

        return layers, {"train_loss": mean(losses, ~is_test), "test_loss": mean(losses, is_test),
                        "train_accuracy": mean(correct, ~is_test),
                        "test_accuracy": mean(correct, is_test)}

    def train_epoch(params, velocity, key):
        """One epoch of minibatch SGD with momentum; returns the gradient statistics."""
        perm = jax.random.permutation(key, train_rows)
        batches = perm[:num_batches * args.batch_size].reshape(num_batches, -1)

        def step(carry, rows):
            params, velocity = carry
            grads = jax.grad(lambda p: cross_entropy(forward(p, x_all[rows])[0],
                                                     y_all[rows]))(params)
            velocity = jax.tree.map(lambda v, g: 0.9 * v + g, velocity, grads)
            params = jax.tree.map(lambda p, v: p - 0.05 * v, params, velocity)
            return (params, velocity), [grads["w0"], grads["w1"], grads["w2"]]

        (params, velocity), kernels = jax.lax.scan(step, (params, velocity), batches)
        return params, velocity, ibjax.gradient_stats(kernels)

    def train(key):
        """One seed: step e records the network after e epochs, then trains the next."""
        key_init, key_shuffle = jax.random.split(key)
        params = init(key_init)
        no_stats = (jnp.full(3, jnp.nan), jnp.full(3, jnp.nan))

        def step(carry, e):
            params, velocity, stats, buffer = carry
            layers, metrics = measured(params)
            buffer = recorder.record(buffer, e, layers, grad_mean=stats[0], grad_std=stats[1],
                                     **metrics)
            params, velocity, stats = jax.lax.cond(
                e < args.epochs, train_epoch, lambda p, v, k: (p, v, stats),
                params, velocity, jax.random.fold_in(key_shuffle, e))
            return (params, velocity, stats, buffer), None

        carry = (params, jax.tree.map(jnp.zeros_like, params), no_stats, recorder.init())
        (_, _, _, buffer), _ = jax.lax.scan(step, carry, jnp.arange(args.epochs + 1))
        return buffer

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(
        jnp.arange(args.seeds))
    start = time.perf_counter()
    buffers = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
    seconds = time.perf_counter() - start
    results = recorder.to_dataset(buffers, info={"run_s": seconds})
    path = ibjax.save(results, args.out / "results.nc")
    figures = ibjax.plot_results(results, args.out)
    accuracy = float(np.median(results.test_accuracy.values[:, -1]))
    print(f"{args.seeds} seeds x {args.epochs} epochs in {seconds:.1f} s (compile included); "
          f"median test accuracy {accuracy:.3f}")
    for written in (path, *figures):
        print(written)


if __name__ == "__main__":
    main()
