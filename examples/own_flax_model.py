"""Your own flax CNN, trained by your own optax loop, measured in-graph by ibjax's recorder.

Eight seeds train at once (``vmap`` over seeds of a ``lax.scan`` over epochs, in one compiled
program) on the 8 x 8 handwritten digits that scikit-learn bundles (1,797 images, 10 classes;
ibjax ships the same copy, so nothing is downloaded). Every snapshot measures I(X;T) and
I(T;Y) of the three layers with three estimators, plus the gradient statistics, loss and
accuracy, into a buffer on the device; at the end one call turns the buffers into the results
file that ``ibjax run`` writes, so ``ibjax plot`` and ``ibjax info`` read it::

    python examples/own_flax_model.py --out runs/own_cnn           # 8 seeds x 150 epochs
    ibjax info runs/own_cnn/results.nc
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ibjax


class SmallCNN(nn.Module):
    """conv 3x3 (8 channels) + max pool, dense 32, softmax: returns (logits, layers)."""

    @nn.compact
    def __call__(self, x):  # x: [batch, 8, 8, 1]
        h1 = nn.max_pool(nn.relu(nn.Conv(8, (3, 3))(x)), (2, 2), strides=(2, 2))
        h2 = nn.relu(nn.Dense(32)(h1.reshape(x.shape[0], -1)))
        logits = nn.Dense(10)(h2)
        return logits, [h1, h2, jax.nn.softmax(logits)]


LAYERS = ("conv (pooled)", "dense", "softmax output")
KERNELS = ("Conv_0", "Dense_0", "Dense_1")  # the weights of each measured layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results and figures")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    digits = ibjax.load_digits()
    x_all = jnp.asarray(digits.x.reshape(-1, 8, 8, 1))  # [1797, 8, 8, 1], pixels in [0, 1]
    y_all = jnp.asarray(digits.y)
    order = np.random.default_rng(0).permutation(len(digits.y))
    train_rows = jnp.asarray(order[:1437])  # a fixed 80/20 split
    is_test = jnp.zeros(len(digits.y), bool).at[order[1437:]].set(True)
    num_batches = len(train_rows) // args.batch_size

    model = SmallCNN()
    optimizer = optax.adam(1e-3)
    recorder = ibjax.make_recorder(
        "log:60", digits.y, ("binning", "equal-mass", "kde-upper"), num_epochs=args.epochs,
        layer_names=LAYERS, bin_range="layer", kde_variance=0.1,  # ReLU: each layer's range
        model_name="SmallCNN", data_name="digits")

    def loss_fn(params, x, y):
        logits, _ = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def measured(params):
        """Layers on all 1,797 rows (the MI rows), and loss and accuracy on train and test."""
        logits, layers = model.apply(params, x_all)
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, y_all)
        correct = (jnp.argmax(logits, axis=-1) == y_all).astype(jnp.float32)

        def mean(values, mask):
            return jnp.sum(jnp.where(mask, values, 0.0)) / jnp.sum(mask)

        return layers, {"train_loss": mean(losses, ~is_test), "test_loss": mean(losses, is_test),
                        "train_accuracy": mean(correct, ~is_test),
                        "test_accuracy": mean(correct, is_test)}

    def train_epoch(params, opt_state, key):
        """One epoch of shuffled minibatches; returns the gradient statistics of its layers."""
        perm = jax.random.permutation(key, train_rows)
        batches = perm[:num_batches * args.batch_size].reshape(num_batches, -1)

        def step(carry, rows):
            params, opt_state = carry
            grads = jax.grad(loss_fn)(params, x_all[rows], y_all[rows])
            updates, opt_state = optimizer.update(grads, opt_state)
            kernels = [grads["params"][name]["kernel"] for name in KERNELS]
            return (optax.apply_updates(params, updates), opt_state), kernels

        (params, opt_state), kernels = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, ibjax.gradient_stats(kernels)  # ([3], [3])

    def train(key):
        """One seed. Step e records the network after e epochs (with the gradient statistics
        of the epoch that ended there), then trains the next epoch: one call site each, so
        each is compiled once."""
        key_init, key_shuffle = jax.random.split(key)
        params = model.init(key_init, x_all[:1])
        no_stats = (jnp.full(len(KERNELS), jnp.nan), jnp.full(len(KERNELS), jnp.nan))

        def step(carry, e):
            params, opt_state, stats, buffer = carry
            layers, metrics = measured(params)
            buffer = recorder.record(buffer, e, layers, grad_mean=stats[0], grad_std=stats[1],
                                     **metrics)
            params, opt_state, stats = jax.lax.cond(  # no epoch after the last snapshot
                e < args.epochs, train_epoch, lambda p, o, k: (p, o, stats),
                params, opt_state, jax.random.fold_in(key_shuffle, e))
            return (params, opt_state, stats, buffer), None

        carry = (params, optimizer.init(params), no_stats, recorder.init())
        (_, _, _, buffer), _ = jax.lax.scan(step, carry, jnp.arange(args.epochs + 1))
        return buffer

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(0), i))(
        jnp.arange(args.seeds))
    start = time.perf_counter()
    buffers = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))  # one program, all seeds
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
