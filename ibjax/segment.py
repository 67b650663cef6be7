"""A segment of a run for a batch of networks: training in groups, measuring all at once.

A segment is a ``scan`` over the plan's steps; each step trains some epochs and may end with a
snapshot. Training all networks at once (:func:`batched_steps`) is simplest, but on a CPU
training is faster in groups of a few dozen networks (their working set stays in cache), while
measuring is faster for all networks at once (each of its many small operations has a fixed
cost). :func:`grouped_steps` does both in one program: each step trains the networks group
after group (``lax.map`` over groups of a vmapped training step), then measures all of them in
one vmapped measurement.

Grouping changes nothing but speed: every network computes the same operations, so results
agree with an ungrouped run up to float rounding (XLA may pick a different kernel for another
batch size).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ibjax import fused_epoch
from ibjax.train import Data, Measurement, Steps, Trainer, TrainState

CPU_TRAINING_GROUP = 64
"""Most networks a CPU device trains at once by default. On a 2-core AMD EPYC, 1000 seeds x
300 epochs with a snapshot every 100: 3,253 / 3,224 seed-epochs/s in groups of 63 against
2,503 / 2,804 with all 500 networks of a core at once (separate programs per chunk of 32 or 64
networks per core had been 15-20 % faster too). GPUs want every network at once, so there is
no default limit there."""

SegmentFn = Callable[[TrainState, Data, Steps], tuple[TrainState, Measurement]]


def training_group_size(choice: int | None, platform: str) -> int | None:
    """Networks trained at once per device: ``choice``, or the platform default (None: all)."""
    if choice is not None:
        return choice
    return CPU_TRAINING_GROUP if platform == "cpu" else None


def num_training_groups(num_networks: int, group_size: int | None) -> int:
    """Groups the ``num_networks`` of one device are trained in (1: all at once)."""
    if group_size is None or num_networks <= group_size:
        return 1
    return math.ceil(num_networks / group_size)


def batched_steps(trainer: Trainer) -> SegmentFn:
    """A segment for a leading network axis (measurements ``[networks, steps]``): each step
    trains all networks at once, then measures them all; the data are shared by all networks.
    """
    return grouped_steps(trainer, 1)


def grouped_steps(trainer: Trainer, num_groups: int) -> SegmentFn:
    """Like :func:`batched_steps`, but each step trains the networks in ``num_groups``
    groups, one group after another, then measures all networks at once.

    Networks are split into consecutive groups of equal size; when ``num_groups`` does not
    divide their number, the last group is filled with copies of the first networks, whose
    results are dropped.

    The loop over steps and the choice to measure are outside the ``vmap`` over networks: JAX
    then traces a step once, with the networks' axis, instead of tracing it for one network and
    transforming that trace (the paper network's segment traced in 0.67 s instead of 0.85 s on
    a 2-core CPU); the program computes the same numbers.
    """
    if trainer.config.training_kernel == "fused":
        train_all = fused_epoch.make_fused_train_steps(trainer)
    else:
        train_all = jax.vmap(trainer.train_steps, in_axes=(0, None, None))
    measure_all = jax.vmap(trainer.measure, in_axes=(0, None))

    def segment(states: TrainState, data: Data, steps: Steps) -> tuple[TrainState,
                                                                       Measurement]:
        num_networks = jax.tree.leaves(states)[0].shape[0]
        group = math.ceil(num_networks / num_groups)
        fill = group * num_groups - num_networks

        def train(states, num_epochs):
            if num_groups == 1:
                return train_all(states, data, num_epochs)
            grouped = jax.tree.map(
                lambda a: jnp.concatenate([a, a[:fill]]).reshape(num_groups, group, *a.shape[1:]),
                states)
            grouped, grad_stats = jax.lax.map(lambda g: train_all(g, data, num_epochs), grouped)
            return jax.tree.map(
                lambda a: a.reshape(num_groups * group, *a.shape[2:])[:num_networks],
                (grouped, grad_stats))

        def unmeasured(states, data):
            return jax.tree.map(lambda a: jnp.broadcast_to(a, (num_networks, *a.shape)),
                                trainer.unmeasured)

        def step(states, step):
            num_epochs, do_measure = step
            states, (grad_mean, grad_std) = train(states, num_epochs)
            ixt, ity, ity_null, train_loss, train_acc, test_loss, test_acc = jax.lax.cond(
                do_measure, measure_all, unmeasured, states, data)
            return states, Measurement(ixt, ity, grad_mean, grad_std, train_loss, train_acc,
                                       test_loss, test_acc, ity_null)

        states, measured = jax.lax.scan(step, states, (steps.num_epochs, steps.measure))
        return states, jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), measured)

    return segment
