"""Routines a caller may substitute while the estimators are traced.

Each hook is a context variable read when an estimator is traced, not when it runs: set it
inside the traced function (as ibjax's trainer and recorder do with
:func:`ibjax.native_counting.native_routines`), since ``jax.jit`` reuses a function's earlier
trace whatever the variable held. A substitute must return exactly the integers the program's
own computation gives, so the bits are the same either way. None (the default): the program
computes them.

- :data:`COUNTING`: ``fn(digits, labels, radix, num_classes, table_t, table_ty)`` for
  :func:`ibjax.mi._entropy.mutual_informations`, with ``digits`` ``[width, N]`` int32 in
  ``[0, radix)`` and ``labels`` ``[N]`` int32 in ``[0, num_classes)``, returns the int32 limb
  sums ``([Lt], [Lty])`` of H(T) with ``table_t`` and of H(T) + H(Y) - H(T, Y) with
  ``table_ty`` (:class:`ibjax.mi._entropy.FixedPointTable`).
- :data:`RANKING`: ``fn(values, dense)`` for :func:`ibjax.mi._entropy.column_ranks` on float32,
  float16 and bfloat16 values (passed as float32 ``[d, N]``), returns its int32 ranks.
- :data:`NEIGHBOURS`: ``fn(t, y, x, k)`` for :func:`ibjax.mi._knn.knn_mi` on float32 layers,
  with the jittered ``t`` ``[d, N]`` and ``x`` ``[D, N]`` float32 (``D = 0`` without inputs)
  and ``y`` ``[N]`` int32, returns ``[4, N]`` int32 per row: the class size, the rows within
  the k-th same-class neighbour's distance, and (``D > 0``) the other rows strictly closer
  than the k-th joint neighbour in x and in t.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator


class Hook:
    """One substitutable routine: :meth:`get` while tracing, :meth:`using` to substitute."""

    def __init__(self, name: str):
        self._var: contextvars.ContextVar[Callable | None] = contextvars.ContextVar(
            f"ibjax_{name}", default=None)

    def get(self) -> Callable | None:
        """The substitute set by the innermost :meth:`using` block, or None."""
        return self._var.get()

    @contextlib.contextmanager
    def using(self, fn: Callable | None) -> Iterator[None]:
        """Within the block, ``fn`` (None: the program's own computation)."""
        token = self._var.set(fn)
        try:
            yield
        finally:
            self._var.reset(token)


COUNTING = Hook("discrete_counting")
RANKING = Hook("column_ranking")
NEIGHBOURS = Hook("knn_neighbours")
