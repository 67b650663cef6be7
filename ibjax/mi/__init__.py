"""ibjax.mi: mutual-information estimators for the information plane, as pure JAX functions.

The estimator core of ibjax. It imports only jax and numpy, never ibjax's experiment layer,
so any training code (flax, equinox, plain JAX) can call it inside its own ``jit``, ``scan``
and ``vmap``::

    ixt, ity = ibjax.mi.estimate([h1, h2, probs], y, ("binning", "kde-upper"))  # [2, 3] bits

Estimators (``ESTIMATORS``): the paper's binning (Shwartz-Ziv & Tishby 2017,
https://arxiv.org/abs/1703.00810), fixed-width bins (Saxe et al. 2018), equal-mass bins
(Chelombiev et al. 2019), the KDE upper and lower bounds (Kolchinsky & Tracey 2017),
matrix-based Rényi entropy (Giraldo et al. 2015), k nearest neighbours (Ross 2014; Kraskov
et al. 2004; these two compare a layer with its inputs ``x``), exact counting of quantized
layers (Lorenzen et al. 2022) and sample propagation for noise-injected networks (Goldfeld
et al. 2019; :func:`sample_propagation` makes its samples). Discrete states are counted
exactly, in 32-bit arithmetic, without hashing.
"""

from ibjax.mi._binning import bin_edges as bin_edges
from ibjax.mi._binning import bin_indices as bin_indices
from ibjax.mi._errors import MIError as MIError
from ibjax.mi._estimators import ESTIMATORS as ESTIMATORS
from ibjax.mi._estimators import Settings as Settings
from ibjax.mi._estimators import binned_mi as binned_mi
from ibjax.mi._estimators import estimate as estimate
from ibjax.mi._estimators import mutual_information as mutual_information
from ibjax.mi._estimators import sample_propagation as sample_propagation

__all__ = ["ESTIMATORS", "MIError", "Settings", "bin_edges", "bin_indices", "binned_mi",
           "estimate", "mutual_information", "sample_propagation"]
