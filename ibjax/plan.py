"""Turning a snapshot schedule into compiled segments of scan steps.

A run is a list of *steps*, each "train n epochs, then maybe measure". Long gaps between
snapshots are split into steps of at most ``max_epochs_per_step`` epochs so the host regains
control regularly; steps are grouped into *segments* of a fixed length (the last one padded with
no-op steps), so that every segment runs the same compiled program. Padding and extra steps
cost nothing but a loop iteration: a step that does not measure skips the measurement.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Plan(NamedTuple):
    """Host-side description of a run.

    Attributes:
      num_epochs: ``[num_segments, steps_per_segment]`` int32 epochs per step.
      measure: ``[num_segments, steps_per_segment]`` bool, True where a step ends in a snapshot.
      snapshot_epochs: ``[num_snapshots]`` the epochs measured, in order.
    """

    num_epochs: np.ndarray
    measure: np.ndarray
    snapshot_epochs: np.ndarray

    @property
    def num_segments(self) -> int:
        return self.num_epochs.shape[0]

    @property
    def steps_per_segment(self) -> int:
        return self.num_epochs.shape[1]

    def epochs_after_segment(self, segment: int) -> int:
        """Epochs completed once ``segment`` (0-based) has run."""
        return int(self.num_epochs[: segment + 1].sum())


def make_plan(snapshot_epochs: tuple[int, ...], num_epochs: int,
              target_segments: int = 50, min_steps_per_segment: int = 8) -> Plan:
    """Plans steps and segments for the given snapshots.

    Args:
      snapshot_epochs: sorted distinct epochs in ``[0, num_epochs]``.
      num_epochs: total epochs; epochs after the last snapshot are trained too.
      target_segments: about how many host round trips (progress updates) a run makes.
      min_steps_per_segment: lower bound on steps per segment.
    """
    max_epochs_per_step = max(1, math.ceil(num_epochs / (4 * target_segments)))
    steps: list[tuple[int, bool]] = []
    previous = 0
    for epoch in snapshot_epochs:
        steps.extend(_split_gap(epoch - previous, max_epochs_per_step, measure_at_end=True))
        previous = epoch
    steps.extend(_split_gap(num_epochs - previous, max_epochs_per_step, measure_at_end=False))
    per_segment = max(min_steps_per_segment, math.ceil(len(steps) / target_segments))
    num_segments = math.ceil(len(steps) / per_segment)
    steps += [(0, False)] * (num_segments * per_segment - len(steps))
    epochs = np.array([s[0] for s in steps], np.int32).reshape(num_segments, per_segment)
    measure = np.array([s[1] for s in steps], bool).reshape(num_segments, per_segment)
    return Plan(epochs, measure, np.asarray(snapshot_epochs, np.int32))


def _split_gap(gap: int, max_epochs: int, measure_at_end: bool) -> list[tuple[int, bool]]:
    if gap == 0:
        return [(0, True)] if measure_at_end else []
    pieces = [max_epochs] * (gap // max_epochs)
    if gap % max_epochs:
        pieces.insert(0, gap % max_epochs)
    return [(n, measure_at_end and i == len(pieces) - 1) for i, n in enumerate(pieces)]
