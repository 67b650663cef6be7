"""Epochs of the MLP's training for a batch of seeds in one Pallas kernel (experimental).

On a GPU, ibjax's XLA program runs each minibatch step as a chain of small kernels, one
launch each, and the paper network's 56,000 sequential steps (8000 epochs x 7 minibatches)
keep the GPU far from busy. This module writes whole epochs, every minibatch's forward pass,
backward pass and Adam update, as one kernel launch: one Pallas program per seed, its
activations in registers (one ``[batch]`` vector per unit) and each weight a scalar, so the
tiny layers waste no padding. Built for CUDA, the paper network's kernel compiles in ~37 s
(Triton, on a 2-core CPU; ``benchmarks/triton_compile.py``). ``Config(training_kernel=
"fused")`` makes :mod:`ibjax.segment` train with it (:func:`make_fused_train_steps`); the
default stays XLA until ``benchmarks/fused_epoch.py`` shows a gain on a GPU. On a CPU it runs
in Pallas's interpret mode (for tests; ~3x slower than XLA).

Each epoch trains what :meth:`ibjax.train.Trainer.train_epoch` trains, up to float rounding
(``tests/test_fused_epoch.py``): the same minibatches of the same shuffles, the gradient of
the same masked mean cross-entropy, optax's Adam. Supported configurations: ``model="mlp"``,
``optimizer="adam"``, binary inputs packed into codes (the paper's data, see
:mod:`ibjax.minibatches`), activation ``tanh``, ``relu`` or ``linear``, no ``noise_std`` and no
``quantize``, at most :data:`MAX_WEIGHTS` weights (:func:`unsupported_reason` says why not
otherwise).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import pallas as pl
from jax.flatten_util import ravel_pytree

from ibjax.config import FUSED_MAX_WEIGHTS, ConfigError, fused_kernel_problems
from ibjax.recorder import gradient_stats
from ibjax.train import Data, Trainer, TrainState

# Adam's settings, from the optimiser state (optax.inject_hyperparams keeps them as float32
# arrays): scalars_ref[:, 2, :5] of the kernel, in this order.
_SETTINGS = ("learning_rate", "b1", "b2", "eps", "eps_root")

MAX_WEIGHTS = FUSED_MAX_WEIGHTS
"""The largest network (weights) the kernel trains (:data:`ibjax.config.FUSED_MAX_WEIGHTS`)."""


def unsupported_reason(trainer: Trainer) -> str | None:
    """Why the fused kernel cannot train ``trainer``'s network (None: it can)."""
    spec = trainer.spec
    problems = fused_kernel_problems(trainer.config.replace(training_kernel="fused"),
                                     spec.num_features, spec.num_classes, spec.packed)
    if trainer.config.model == "mlp" and not trainer.layer_products:
        problems.append("a model of your own (model=...)")
    return None if not problems else "the fused epoch kernel cannot train " + ", ".join(
        problems)


def _power_of_two(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _layer_offsets(params) -> list[tuple[int, int, int, int]]:
    """Per Dense layer ``(kernel_offset, bias_offset, fan_in, fan_out)`` in the raveled
    parameter vector (``ravel_pytree`` order), input to output."""
    dense = params["params"]
    by_path, start = {}, 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):  # ravel_pytree's order
        by_path[jax.tree_util.keystr(path)] = start
        start += int(np.prod(leaf.shape))
    layers = []
    for i in range(len(dense)):
        name = f"Dense_{i}"
        fan_in, fan_out = dense[name]["kernel"].shape
        layers.append((by_path[f"['params']['{name}']['kernel']"],
                       by_path[f"['params']['{name}']['bias']"], fan_in, fan_out))
    return layers


def _make_kernel(layers, activation: str, num_features: int, num_classes: int,
                 num_epochs: int, steps_per_epoch: int, batch_size: int, num_train: int,
                 num_params: int, interpret: bool):
    """The Pallas kernel body for one seed (see :func:`make_fused_epochs`).

    Each ref holds the seed's row (axis 0, of size 1); a unit's activations are ``[1, batch]``
    and each weight is read as a scalar, each weight gradient written as one. The only tensor
    loads and stores are the minibatch's codes, the step's gradients (read back as a vector
    for Adam), the weights after each step, and the state (weights and Adam's moments) once
    in and once out: Triton's coalescing pass collects, for each tensor access, every
    operation connected to it, so its time grows with their number times the kernel's size
    squared (a ``[1, 1]`` tensor access per weight took over 15 minutes to compile for the
    paper network; now ~37 s), and it ignores scalar ones."""
    from jax.experimental.pallas import triton as pl_triton

    barrier = (lambda: None) if interpret else pl_triton.debug_barrier

    def act(z):
        if activation == "tanh":
            return jnp.tanh(z)
        if activation == "relu":
            return jnp.maximum(z, 0.0)
        return z

    def act_grad(g, a):
        """The gradient through the activation, given the activation's output ``a``."""
        if activation == "tanh":  # as JAX differentiates tanh: (g + g a)(1 - a)
            return (g + g * a) * (1.0 - a)
        if activation == "relu":
            return jnp.where(a > 0.0, g, 0.0)
        return g

    def kernel(codes_ref, scalars_ref, state_in, state_ref, grads_ref, bad_ref):
        del state_in  # the same buffer as state_ref: rows weights, Adam's mu and nu, unused

        learning_rate, b1, b2, eps, eps_root = (scalars_ref[0, 2, i] for i in range(5))
        rows = jax.lax.broadcasted_iota(jnp.int32, state_ref.shape[1:], 0)  # [4, padded]
        real = jax.lax.broadcasted_iota(jnp.int32, (1, state_ref.shape[2]), 1) < num_params

        def weight(offset):
            """The weight at ``offset`` of the raveled parameters, a scalar."""
            return state_ref[0, 0, offset]

        def step(slot, carry):
            epoch, params, mu, nu = carry  # [1, padded] each: state_ref's rows 0-2
            t = epoch * steps_per_epoch + slot
            code = codes_ref[:, t, :]
            # The minibatch's real rows (the last one of an epoch may be partial; see
            # Trainer.batch_valid), and their number.
            position = jax.lax.broadcasted_iota(jnp.int32, (1, code.shape[1]), 1)
            first = slot * batch_size
            valid = ((position < batch_size) & (first + position < num_train)).astype(
                jnp.float32)
            count = jnp.minimum(batch_size, num_train - first).astype(jnp.float32)
            x = [((code >> k) & 1).astype(jnp.float32) for k in range(num_features)]
            label = code >> num_features
            # Forward: h[j] = act(sum_k W[k, j] h_in[k] + b[j]), one [batch] vector per unit.
            h, acts = x, [x]
            for index, (k_off, b_off, fan_in, fan_out) in enumerate(layers):
                z = []
                for j in range(fan_out):
                    acc = weight(k_off + j) * h[0]
                    for k in range(1, fan_in):
                        acc = acc + weight(k_off + k * fan_out + j) * h[k]
                    z.append(acc + weight(b_off + j))
                h = z if index == len(layers) - 1 else [act(v) for v in z]
                acts.append(h)
            logits = acts.pop()
            # d(mean masked cross-entropy)/d logits = (softmax - one_hot) * valid / sum(valid)
            top = logits[0]
            for v in logits[1:]:
                top = jnp.maximum(top, v)
            exps = [jnp.exp(v - top) for v in logits]
            total = exps[0]
            for e in exps[1:]:
                total = total + e
            scale = valid / count
            delta = [(e / total - (label == c).astype(jnp.float32)) * scale
                     for c, e in enumerate(exps)]
            # Backward, output to input: weight gradients are sums over the batch.
            for index in range(len(layers) - 1, -1, -1):
                k_off, b_off, fan_in, fan_out = layers[index]
                h_in = acts[index]
                for j in range(fan_out):
                    grads_ref[0, slot, b_off + j] = jnp.sum(delta[j])
                    for k in range(fan_in):
                        grads_ref[0, slot, k_off + k * fan_out + j] = jnp.sum(
                            h_in[k] * delta[j])
                if index:
                    back = []
                    for k in range(fan_in):
                        g = weight(k_off + k * fan_out) * delta[0]
                        for j in range(1, fan_out):
                            g = g + weight(k_off + k * fan_out + j) * delta[j]
                        back.append(act_grad(g, h_in[k]))
                    delta = back
            barrier()
            # optax.adam on the whole parameter vector (padding stays zero).
            g = jnp.where(real, grads_ref[:, slot, :], 0.0)  # the padding is never written
            mu = (1 - b1) * g + b1 * mu
            nu = (1 - b2) * (g * g) + b2 * nu
            mu_hat = mu / scalars_ref[0, 0, t]
            nu_hat = nu / scalars_ref[0, 1, t]
            updates = mu_hat / (jnp.sqrt(nu_hat + eps_root) + eps)
            params = params + updates * -learning_rate
            state_ref[0, 0:1, :] = params  # for the next step's scalar reads
            barrier()
            return epoch, params, mu, nu

        def epoch_loop(epoch, carry):
            params, mu, nu = jax.lax.fori_loop(0, steps_per_epoch, step, (epoch, *carry))[1:]
            # Non-finite weights after this epoch (NaN or inf: p - p is then NaN, not 0).
            bad_ref[0, epoch] = jnp.sum(jnp.where(real & (params - params != 0.0), 1.0, 0.0))
            return params, mu, nu

        # The state is loaded once and stored once (the weights also after each step, for
        # the scalar reads); Adam's moments stay in registers between steps.
        state = state_ref[0]

        def row(r):  # [1, padded]
            return jnp.sum(jnp.where(rows == r, state, 0.0), axis=0, keepdims=True)

        params, mu, nu = jax.lax.fori_loop(0, num_epochs, epoch_loop, (row(0), row(1), row(2)))
        state_ref[0] = jnp.where(rows == 0, params,
                                 jnp.where(rows == 1, mu, jnp.where(rows == 2, nu, 0.0)))

    return kernel


def _build(trainer: Trainer, num_epochs: int, interpret: bool | None,
           num_warps: int) -> _Fused:
    """The kernel for ``num_epochs`` epochs per launch and the functions around it, after
    checking the arguments (see :func:`make_fused_epochs`)."""
    if not isinstance(trainer, Trainer):
        raise TypeError(f"trainer must be an ibjax.train.Trainer (make_trainer(config, data)), "
                        f"got {type(trainer).__name__}")
    reason = unsupported_reason(trainer)
    if reason:
        raise ConfigError(reason)
    if not _is_integer(num_epochs) or num_epochs < 1:
        raise ConfigError(f"num_epochs must be an integer >= 1, got {num_epochs!r}")
    num_epochs = int(num_epochs)
    if (not _is_integer(num_warps) or num_warps < 1 or num_warps & (num_warps - 1)
            or num_warps > 32):
        raise ConfigError(f"num_warps must be a power of two (1, 2, 4, 8, 16 or 32), got "
                          f"{num_warps!r}")
    if interpret is not None and not isinstance(interpret, bool):
        raise ConfigError(f"interpret must be True, False or None (CPUs), got {interpret!r}")
    num_warps = int(num_warps)
    config, spec = trainer.config, trainer.spec
    example = jax.eval_shape(trainer.init, jnp.int32(0), jnp.float32(0.0))
    layers = _layer_offsets(example.params)
    num_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(example.params))
    padded_params = _power_of_two(num_params)
    batch_valid = np.asarray(trainer.batch_valid)  # [num_batches, batch_size]
    steps_per_epoch, batch_size = batch_valid.shape
    num_steps = num_epochs * steps_per_epoch
    padded_steps, padded_batch = _power_of_two(num_steps), _power_of_two(batch_size)
    padded_slots, padded_epochs = _power_of_two(steps_per_epoch), _power_of_two(num_epochs)
    width = max(padded_steps, 8)  # of the per-seed scalars: a step's bias corrections, settings
    num_train = int(batch_valid.sum())  # the kernel computes the mask from it
    if not np.array_equal(batch_valid.reshape(-1), np.arange(batch_valid.size) < num_train):
        raise AssertionError("Trainer.batch_valid is not the kernel's mask")
    if interpret is None:
        interpret = trainer.platform == "cpu"
    kernel = _make_kernel(layers, config.activation, spec.num_features, spec.num_classes,
                          num_epochs, steps_per_epoch, batch_size, num_train, num_params,
                          interpret)

    def call(num_seeds: int):
        def per_seed(*shape):
            return pl.BlockSpec((1, *shape), lambda g: (g,) + (0,) * len(shape))

        def out(*shape):
            return jax.ShapeDtypeStruct((num_seeds, *shape), jnp.float32)

        options = {} if interpret else {"compiler_params": _triton_params(num_warps)}
        return pl.pallas_call(
            kernel, grid=(num_seeds,),
            in_specs=[per_seed(padded_steps, padded_batch), per_seed(4, width),
                      per_seed(4, padded_params)],
            out_specs=[per_seed(4, padded_params), per_seed(padded_slots, padded_params),
                       per_seed(padded_epochs)],
            out_shape=[out(4, padded_params), out(padded_slots, padded_params),
                       out(padded_epochs)],
            input_output_aliases={2: 0},  # parameters and Adam state updated in place
            interpret=interpret, **options)

    def pad_to(a, shape):
        return jnp.pad(a, [(0, n - m) for n, m in zip(shape, a.shape, strict=True)])

    expected = _shapes(example.params)

    def pack(states: TrainState) -> _Packed:
        """The kernel's state: raveled weights, Adam's mu and nu, ``[S, 4, padded]``."""
        _check_states(states, expected)
        num_seeds = states.epoch.shape[0]
        adam = _adam_state(states.opt_state)
        flat = jax.vmap(lambda p: ravel_pytree(p)[0])(states.params)
        state = jnp.stack([flat, adam.mu, adam.nu, jnp.zeros_like(flat)], axis=1)
        return _Packed(pad_to(state, (num_seeds, 4, padded_params)),
                       first_bad=jnp.full(num_seeds, -1, jnp.int32))

    def launch(states: TrainState, packed: _Packed, data: Data, done: jax.Array):
        """One launch: ``num_epochs`` epochs after ``done`` epochs (traced) since ``states``.
        Returns the packed vectors after them and the last epoch's flat gradients
        ``[S, steps_per_epoch, num_params]``."""
        num_seeds = states.epoch.shape[0]

        def seed_codes(state):  # [num_epochs * steps_per_epoch, batch_size] minibatch codes
            def one(e):
                return trainer.epoch_data(state._replace(epoch=state.epoch + done + e), data)
            return jax.vmap(one)(jnp.arange(num_epochs)).reshape(num_steps, batch_size)

        codes = pad_to(jax.vmap(seed_codes)(states), (num_seeds, padded_steps, padded_batch))
        count = _adam_state(states.opt_state).count + done * steps_per_epoch
        steps_done = count[:, None] + 1 + jnp.arange(num_steps, dtype=count.dtype)[None]
        hyper = states.opt_state.hyperparams  # each [S] float32
        b1, b2 = hyper["b1"][:, None], hyper["b2"][:, None]
        settings = jnp.stack([hyper[name] for name in _SETTINGS], axis=1)  # [S, 5]
        scalars = jnp.stack([pad_to(1 - b1 ** steps_done, (num_seeds, width)),
                             pad_to(1 - b2 ** steps_done, (num_seeds, width)),
                             pad_to(settings, (num_seeds, width)),
                             jnp.zeros((num_seeds, width), jnp.float32)], axis=1)
        state, grads, bad = call(num_seeds)(codes, scalars, packed.state)
        bad = bad[:, :num_epochs] > 0  # [S, num_epochs]: weights not finite after
        first = done + 1 + jnp.argmax(bad, axis=1).astype(jnp.int32)
        first_bad = jnp.where((packed.first_bad < 0) & jnp.any(bad, axis=1), first,
                              packed.first_bad)
        return (_Packed(state, first_bad),
                grads[:, :steps_per_epoch, :num_params])

    def unpack(states: TrainState, packed: _Packed, epochs_done) -> TrainState:
        """``states`` after ``epochs_done`` epochs (traced) that ended with ``packed``."""
        unravel = ravel_pytree(jax.tree.map(lambda a: a[0], states.params))[1]
        params = jax.vmap(unravel)(packed.state[:, 0, :num_params])
        steps = epochs_done * steps_per_epoch
        adam = _adam_state(states.opt_state)
        adam = adam._replace(count=adam.count + steps, mu=packed.state[:, 1, :num_params],
                             nu=packed.state[:, 2, :num_params])
        opt_state = jax.tree.map(
            lambda s: adam if isinstance(s, optax.ScaleByAdamState) else s,
            states.opt_state._replace(count=states.opt_state.count + steps),
            is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        diverged_at = jnp.where((states.diverged_at < 0) & (packed.first_bad >= 0),
                                states.epoch + packed.first_bad, states.diverged_at)
        return jax.vmap(trainer.finish_epochs, in_axes=(0, 0, 0, None))(
            states, params, opt_state, epochs_done)._replace(diverged_at=diverged_at)

    def kernel_grads(grads: jax.Array) -> list[jax.Array]:
        """Flat ``[S, batches, num_params]`` gradients as each layer's ``[S, batches, in, out]``."""
        return [grads[..., k_off:k_off + fan_in * fan_out].reshape(
            *grads.shape[:2], fan_in, fan_out) for k_off, _, fan_in, fan_out in layers]

    return _Fused(pack, launch, unpack, kernel_grads, (steps_per_epoch, num_params))


class _Packed(NamedTuple):
    """What the kernel carries between launches.

    Attributes:
      state: ``[S, 4, padded_params]``: raveled weights, Adam's mu and nu, zeros.
      first_bad: ``[S]`` int32, epochs after which a weight was first not finite, counted from
        the packed states (-1: none yet).
    """

    state: jax.Array
    first_bad: jax.Array


class _Fused(NamedTuple):
    pack: Callable
    launch: Callable
    unpack: Callable
    kernel_grads: Callable
    grads_shape: tuple[int, int]  # a launch's gradients per seed: (steps per epoch, weights)


def make_fused_epochs(trainer: Trainer, num_epochs: int = 1, *,
                      interpret: bool | None = None, num_warps: int = 4
                      ) -> Callable[[TrainState, Data], tuple[TrainState, list[jax.Array]]]:
    """``epochs(states, data) -> (states, kernel_grads)``: ``num_epochs`` epochs of every seed.

    Args:
      trainer: a :func:`ibjax.train.make_trainer` trainer (its configuration and data shapes).
      num_epochs: epochs per kernel launch (static). Each call gathers the minibatches of all
        of them first: ``S x 2**ceil(log2(num_epochs * num_batches)) x 2**ceil(log2(batch))``
        int32 (256 KiB per seed at 10 epochs of the paper network).
      interpret: run the kernel in Pallas's interpret mode (default: when the trainer was
        built for CPUs, ``make_trainer(..., platform=)``).
      num_warps: warps per program (one program per seed) on a GPU (Triton), a power of two
        up to 32.

    The returned function takes ``states``, a :class:`~ibjax.train.TrainState` with a leading
    seed axis ``[S, ...]`` (as ``jax.vmap(trainer.init)`` makes it), and the
    :class:`~ibjax.train.Data`. It returns the states after ``num_epochs`` epochs and the last
    epoch's kernel gradients per layer, ``[S, num_batches, fan_in, fan_out]``, as
    ``num_epochs`` calls of ``jax.vmap(trainer.train_epoch)`` do (``diverged_at`` too: the
    kernel checks the weights after every epoch). It raises :class:`ConfigError` for states
    whose parameters are not ``trainer``'s network's with a seed axis in front.

    Raises:
      ConfigError: a configuration the kernel does not support, ``num_epochs`` not an
        integer >= 1, ``num_warps`` not a power of two up to 32, ``interpret`` not a bool or
        None.
      TypeError: ``trainer`` is not a :class:`~ibjax.train.Trainer`.
    """
    fused = _build(trainer, num_epochs, interpret, num_warps)

    def epochs(states: TrainState, data: Data) -> tuple[TrainState, list[jax.Array]]:
        packed, grads = fused.launch(states, fused.pack(states), data, jnp.int32(0))
        return fused.unpack(states, packed, num_epochs), fused.kernel_grads(grads)

    return epochs


def make_fused_train_steps(trainer: Trainer, *, interpret: bool | None = None,
                           num_warps: int = 4):
    """``train_steps(states, data, num_epochs) -> (states, (grad_mean, grad_std))`` for every
    seed at once, as ``jax.vmap(trainer.train_steps, in_axes=(0, None, None))`` computes it,
    with the fused kernel (one launch per epoch; ``interpret`` and ``num_warps`` as
    :func:`make_fused_epochs`'s). ``num_epochs`` may be traced (0 or less trains nothing); the
    parameters stay packed between epochs. The program holds the kernel once (one loop over
    the epochs, carrying the last launch's gradients), so a GPU compiles it once."""
    fused = _build(trainer, 1, interpret, num_warps)

    def train_steps(states: TrainState, data: Data, num_epochs: jax.Array):
        num_epochs = jnp.maximum(num_epochs, 0)
        no_grads = jnp.zeros((states.epoch.shape[0], *fused.grads_shape), jnp.float32)
        packed, grads = jax.lax.fori_loop(
            0, num_epochs,
            lambda done, carry: fused.launch(states, carry[0], data, done),
            (fused.pack(states), no_grads))
        grad_mean, grad_std = jax.vmap(gradient_stats)(fused.kernel_grads(grads))
        states = fused.unpack(states, packed, num_epochs)
        invalid = ((states.diverged_at >= 0) | (num_epochs == 0))[:, None]
        return states, (jnp.where(invalid, jnp.nan, grad_mean),
                        jnp.where(invalid, jnp.nan, grad_std))

    return train_steps


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _shapes(params) -> list[tuple[str, tuple[int, ...]]]:
    """Each parameter's path and shape."""
    return [(jax.tree_util.keystr(path), tuple(np.shape(leaf)))
            for path, leaf in jax.tree_util.tree_leaves_with_path(params)]


def _check_states(states, expected: list[tuple[str, tuple[int, ...]]]) -> None:
    """Raises ConfigError unless ``states`` are seeds of the network whose parameter shapes
    are ``expected`` (:func:`_shapes`), each with a leading seed axis."""
    if not isinstance(states, TrainState) or np.ndim(states.epoch) != 1:
        raise ConfigError("states must be a TrainState with a leading seed axis, as "
                          "jax.vmap(trainer.init) makes it")
    num_seeds = np.shape(states.epoch)[0]
    wanted = [(path, (num_seeds, *shape)) for path, shape in expected]
    if _shapes(states.params) != wanted:
        raise ConfigError(f"states are not of the trainer's network: their parameters are "
                          f"{_shapes(states.params)}, the trainer's (with {num_seeds} seeds) "
                          f"{wanted}")


def _adam_state(opt_state) -> optax.ScaleByAdamState:
    """The ``ScaleByAdamState`` inside ``make_optimizer``'s state."""
    found = [s for s in jax.tree.leaves(
        opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
        if isinstance(s, optax.ScaleByAdamState)]
    if len(found) != 1:
        raise ConfigError(f"expected one optax ScaleByAdamState in the optimiser state, "
                          f"found {len(found)}")
    return found[0]


def _triton_params(num_warps: int):
    from jax.experimental.pallas import triton as pl_triton
    return pl_triton.CompilerParams(num_warps=num_warps, num_stages=1)
