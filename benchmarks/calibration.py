"""Calibration of the ibjax.mi estimators on synthetic layers whose mutual information is known.

    python benchmarks/calibration.py --json benchmarks/results/calibration_cpu.json \
        --figure docs/calibration.png
    python benchmarks/calibration.py --quick  # smoke run: N = 256, d in {1, 8}, 3 draws (~15 s)

Every estimator of ``ibjax.mi`` (binning, binning-width, equal-mass, kde-upper, kde-lower,
matrix-renyi, knn) measures layers drawn from three families, for N rows in {256, 1024, 4096}
and widths d in {1, 2, 4, 8, 16, 32}, each cell over ``--draws`` independent draws (5). Every
family has binary labels; every estimator runs at the library's defaults (30 edges on [-1, 1],
bin width 0.07, kde_variance 1e-3, Renyi order 2 with Silverman's width, k = 3), except the
KDE bounds in family C (below). Per estimator, family, MI term, N and d it reports
``bias = mean over draws of (estimate - truth)`` and ``spread = std over draws of (estimate -
truth)`` (ddof = 1), in bits.

A. ``discrete``: M = 12 states with P(s) proportional to 0.75**s. X ~ N(0, I_d) (the inputs,
   passed as ``x``, as wide as the layer); the state is the bucket of the projection x.u (u a
   random unit vector) between the standard-normal quantiles of the cumulative P(s), so T = c_s
   is a function of X; the centres c_s sit at the centres of the fixed-range bins (every other
   bin of the 30 edges on [-1, 1], so 15 values per coordinate, 0.138 apart), distinct
   coordinates for d = 1, and at least 0.3 apart in Euclidean distance for d >= 2. Label y = (s
   mod 2), flipped with probability 0.1 per row. Truth: with X uniform over the N rows and T a
   function of X, I(X;T) = H(T) and I(T;Y) = H(T) + H(Y) - H(T, Y) of the empirical
   distribution of (s_i, y_i), counted exactly in float64 (the sample's own value, what every
   estimator is asked for). The population values (H(P), and H(Y) - h2(0.1)) are recorded next
   to it, and so are the Renyi-2 analogues (-log2 sum p^2 ...), matrix-renyi's own target for
   separated states.
B. ``gaussian``: balanced labels (N/2 each), T | Y=c ~ N((c - 1/2) delta u, s^2 I_d) with s =
   0.3, delta = 0.6 (delta / s = 2) and u a random unit vector. Only I(T;Y) is calibrated
   (``x`` is T itself, which no I(T;Y) formula reads). Truth: the population I(T;Y) = H(Y) -
   E[h2(P(Y=1 | T))]; only the projection z = T.u / s matters, z | Y ~ N(+-m, 1) with m = delta
   / (2 s), P(Y=1 | z) = sigmoid(2 m z), so it is a 1-d integral, computed with
   scipy.integrate.quad (its error estimate is printed; below 1e-12 bits) and cross-checked
   with 200-point Gauss-Hermite quadrature. For finite N there is a finite-sample gap: for N
   distinct rows the sample's own I(T;Y) (X uniform over the rows, T a function of X) is H(Y) =
   1 bit, which a fine enough estimator approaches; the population value is the quantity one
   wants from an estimator here.
C. ``linear-gaussian``: X ~ N(0, I_d) passed as ``x``, T = a Q X + sigma Z with Q a random
   orthogonal d x d matrix, Z ~ N(0, I_d), a^2 + sigma^2 = 0.09 (std 0.3 per unit) and a /
   sigma set so that I(X;T) = 1/2 log2 det(I + W W^T / sigma^2) = d/2 log2(1 + a^2/sigma^2) = 2
   bits at every width (closed form, evaluated with numpy's slogdet). Labels are a random
   balanced split independent of everything: population I(T;Y) = 0. knn, matrix-renyi and the
   three binnings see the noisy T (and knn and matrix-renyi the inputs x). The KDE bounds are
   built for exactly this channel: they see the noiseless layer a Q X with kde_variance =
   sigma^2, so they bound I(X; aQX + N(0, sigma^2 I)) with X uniform over the N rows, whose
   large-N limit is the closed form; the bounds themselves converge to -E_x ln E_x' K(x, x') =
   d [1/2 ln(1 + r/c) + r / (2c (1 + r/c))] nats (r = a^2/sigma^2; c = 1 upper, 4 lower), not
   to the truth: their gap at large N, also written out (``large_N_limit``). The binnings
   instead measure H(binned T) of the sample (X uniform over N distinct rows: the sample's own
   I(X;T) is log2 N) and matrix-renyi a matrix Renyi-2 functional, not Shannon's I: their rows
   are shown against the same truth but target other quantities.

Runs on one JAX CPU device. Per (N, d) one compiled program measures all draws of all three
families (vmapped), plus one small program for the family-C KDE bounds. Anomalies (NaN, I(X;T)
outside [0, log2 N], I(T;Y) above the sample's H(Y) for the estimators bounded by it) are
printed and written to the JSON.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from scipy import integrate, special, stats

import ibjax.mi
from ibjax.hardware import hardware_info

ESTIMATORS = ("binning", "binning-width", "equal-mass", "kde-upper", "kde-lower",
              "matrix-renyi", "knn")
KDE = ("kde-upper", "kde-lower")
SETTINGS = {"num_bins": 30, "bin_range": (-1.0, 1.0), "bin_width": 0.07, "kde_variance": 1e-3,
            "renyi_alpha": 2.0, "renyi_sigma": "silverman", "knn_k": 3}
FAMILIES = ("discrete", "gaussian", "linear-gaussian")
PANELS = (("discrete", "ixt"), ("discrete", "ity"), ("gaussian", "ity"),
          ("linear-gaussian", "ixt"), ("linear-gaussian", "ity"))
TERM = {"ixt": "I(X;T)", "ity": "I(T;Y)"}

# family A
NUM_STATES = 12
STATE_DECAY = 0.75
LABEL_FLIP = 0.1
MIN_SEPARATION = 0.3  # Euclidean, between centres, d >= 2
# family B
CLASS_STD = 0.3
CLASS_DISTANCE = 0.6
# family C
CHANNEL_BITS = 2.0
UNIT_VARIANCE = 0.09


def bits_entropy(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a vector of counts (float64)."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def renyi2_entropy(counts: np.ndarray) -> float:
    p = counts / counts.sum()
    return float(-np.log2((p * p).sum()))


def binary_entropy(q: float) -> float:
    return bits_entropy(np.array([q, 1.0 - q]))


def state_probabilities() -> np.ndarray:
    p = STATE_DECAY ** np.arange(NUM_STATES)
    return p / p.sum()


def state_centres(rng: np.random.Generator, d: int) -> np.ndarray:
    """[M, d] centres on every other bin centre of the 30 edges on [-1, 1]."""
    h = 2.0 / 29.0
    values = -1.0 + (2 * np.arange(15) + 0.5) * h  # 15 values, 0.138 apart
    if d == 1:
        return values[rng.choice(15, NUM_STATES, replace=False)][:, None]
    centres: list[np.ndarray] = []
    while len(centres) < NUM_STATES:  # random sequential addition
        candidate = values[rng.integers(0, 15, d)]
        if all(np.linalg.norm(candidate - c) >= MIN_SEPARATION for c in centres):
            centres.append(candidate)
    return np.stack(centres)


def unit_vector(rng: np.random.Generator, d: int) -> np.ndarray:
    u = rng.normal(size=d)
    return u / np.linalg.norm(u)


def balanced_labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % 2).astype(np.int32)


def discrete_population() -> dict[str, float]:
    """Family A's population H(T) and I(T;Y) = H(Y) - h2(flip), bits."""
    p = state_probabilities()
    q = float(p[1::2].sum() * (1 - LABEL_FLIP) + p[0::2].sum() * LABEL_FLIP)  # P(Y = 1)
    return {"ixt": bits_entropy(p), "ity": binary_entropy(q) - binary_entropy(LABEL_FLIP)}


def discrete_family(rng, n, d):
    p = state_probabilities()
    centres = state_centres(rng, d)
    x = rng.normal(size=(n, d))
    z = x @ unit_vector(rng, d)
    s = np.searchsorted(stats.norm.ppf(np.cumsum(p)[:-1]), z)
    y = ((s % 2) ^ (rng.random(n) < LABEL_FLIP)).astype(np.int32)
    joint = np.zeros((NUM_STATES, 2))
    np.add.at(joint, (s, y), 1)
    h_t, h_y, h_ty = (bits_entropy(joint.sum(1)), bits_entropy(joint.sum(0)),
                      bits_entropy(joint.ravel()))
    r_t, r_y, r_ty = (renyi2_entropy(joint.sum(1)), renyi2_entropy(joint.sum(0)),
                      renyi2_entropy(joint.ravel()))
    return {"t": centres[s], "x": x, "y": y,
            "truth": {"ixt": h_t, "ity": h_t + h_y - h_ty},
            "h_y": h_y,
            "population": discrete_population(),
            "renyi2": {"ixt": r_t, "ity": r_t + r_y - r_ty},
            "sample_definition": {"ixt": h_t, "ity": h_t + h_y - h_ty}}


@functools.lru_cache(maxsize=1)
def gaussian_truth() -> dict:
    """Population I(T;Y) of family B, bits, by quad, with a Gauss-Hermite cross-check."""
    m = CLASS_DISTANCE / (2 * CLASS_STD)

    def h2_posterior(z):  # binary entropy of sigmoid(2 m z), bits, stable for any z
        a = 2 * m * z
        return (np.logaddexp(0, -a) * special.expit(a)
                + np.logaddexp(0, a) * special.expit(-a)) / math.log(2)

    def integrand(z):
        density = 0.5 * (stats.norm.pdf(z - m) + stats.norm.pdf(z + m))
        return density * h2_posterior(z)

    value, error = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-13,
                                  limit=200)
    nodes, weights = special.roots_hermitenorm(200)  # E over N(m, 1); the other class mirrors
    hermite = float((weights * h2_posterior(nodes + m)).sum() / math.sqrt(2 * math.pi))
    return {"ity": 1.0 - value, "quad_error_estimate": error,
            "gauss_hermite_200": 1.0 - hermite}


def gaussian_family(rng, n, d):
    y = balanced_labels(rng, n)
    u = unit_vector(rng, d)
    t = CLASS_STD * rng.normal(size=(n, d)) + ((y - 0.5) * CLASS_DISTANCE)[:, None] * u
    return {"t": t, "x": t, "y": y,
            "truth": {"ixt": float("nan"), "ity": gaussian_truth()["ity"]}, "h_y": 1.0,
            "sample_definition": {"ixt": math.log2(n), "ity": 1.0}}


def channel(d: int) -> tuple[float, float]:
    """(a^2, sigma^2) of family C at width d."""
    snr = 2.0 ** (2.0 * CHANNEL_BITS / d) - 1.0
    return UNIT_VARIANCE * snr / (1 + snr), UNIT_VARIANCE / (1 + snr)


def linear_gaussian_family(rng, n, d):
    a2, s2 = channel(d)
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    w = math.sqrt(a2) * q * np.sign(np.diag(r))
    x = rng.normal(size=(n, d))
    clean = x @ w.T
    t = clean + math.sqrt(s2) * rng.normal(size=(n, d))
    truth = 0.5 * np.linalg.slogdet(np.eye(d) + w @ w.T / s2)[1] / math.log(2)
    return {"t": t, "x": x, "y": balanced_labels(rng, n), "clean": clean,
            "truth": {"ixt": float(truth), "ity": 0.0}, "h_y": 1.0, "kde_variance": s2,
            "sample_definition": {"ixt": math.log2(n), "ity": 1.0}}


def kde_limits(d: int) -> dict[str, float]:
    """Large-N limits (bits) of the KDE bounds' I(X;T) on family C at width d.

    With T = aQX, X ~ N(0, I_d) and kernel exp(-|t - t'|^2 / (2 c sigma^2)) (c = 1: the
    pairwise-KL upper bound, c = 4: the Bhattacharyya lower bound), the bound is
    -E_x ln E_x' K(x, x') = d [1/2 ln(1 + r/c) + r / (2 c (1 + r/c))] nats, r = a^2/sigma^2:
    the bounds' own gap to the closed form, which no N removes.
    """
    a2, s2 = channel(d)
    r = a2 / s2
    return {name: d * (0.5 * math.log1p(r / c) + r / (2 * c * (1 + r / c))) / math.log(2)
            for name, c in (("kde-upper", 1.0), ("kde-lower", 4.0))}


MAKERS = {"discrete": discrete_family, "gaussian": gaussian_family,
          "linear-gaussian": linear_gaussian_family}


def measure_cell(n: int, d: int, draws: int, seed: int) -> tuple[list[dict], float]:
    """Every estimator on every family's draws at (N, d): result rows and wall seconds."""
    start = time.perf_counter()
    samples = {}
    for f_index, family in enumerate(FAMILIES):
        samples[family] = [MAKERS[family](np.random.default_rng([seed, n, d, f_index, r]), n, d)
                           for r in range(draws)]
    stacked = [s for family in FAMILIES for s in samples[family]]
    t = jnp.asarray(np.stack([s["t"] for s in stacked]), jnp.float32)
    x = jnp.asarray(np.stack([s["x"] for s in stacked]), jnp.float32)
    y = jnp.asarray(np.stack([s["y"] for s in stacked]), jnp.int32)

    def all_estimators(t, y, x):
        ixt, ity = ibjax.mi.estimate([t], y, ESTIMATORS, x=x, num_classes=2, **SETTINGS)
        return ixt[:, 0], ity[:, 0]

    ixt, ity = jax.jit(jax.vmap(all_estimators))(t, y, x)
    ixt, ity = np.asarray(ixt, np.float64), np.asarray(ity, np.float64)  # [F * draws, E]

    # family C: the KDE bounds on the noiseless layer, noise variance = the channel's sigma^2
    channel_samples = samples["linear-gaussian"]
    kde_settings = {**SETTINGS, "kde_variance": channel_samples[0]["kde_variance"]}

    def kde_on_channel(t, y):
        k_ixt, k_ity = ibjax.mi.estimate([t], y, KDE, num_classes=2, **kde_settings)
        return k_ixt[:, 0], k_ity[:, 0]

    clean = jnp.asarray(np.stack([s["clean"] for s in channel_samples]), jnp.float32)
    labels = jnp.asarray(np.stack([s["y"] for s in channel_samples]), jnp.int32)
    k_ixt, k_ity = jax.jit(jax.vmap(kde_on_channel))(clean, labels)
    offset = FAMILIES.index("linear-gaussian") * draws
    for e_index, name in enumerate(KDE):
        column = ESTIMATORS.index(name)
        ixt[offset:offset + draws, column] = np.asarray(k_ixt, np.float64)[:, e_index]
        ity[offset:offset + draws, column] = np.asarray(k_ity, np.float64)[:, e_index]
    wall = time.perf_counter() - start

    rows = []
    for f_index, family in enumerate(FAMILIES):
        block = slice(f_index * draws, (f_index + 1) * draws)
        for term, values in (("ixt", ixt), ("ity", ity)):
            if (family, term) not in PANELS:
                continue
            truths = np.array([s["truth"][term] for s in samples[family]])
            for e_index, name in enumerate(ESTIMATORS):
                estimates = values[block, e_index]
                errors = estimates - truths
                row = {"family": family, "term": term, "estimator": name, "N": n, "d": d,
                       "truth": float(truths.mean()), "truths": truths.tolist(),
                       "estimates": estimates.tolist(),
                       "bias": float(np.mean(errors)),
                       "spread": float(np.std(errors, ddof=1)) if draws > 1 else 0.0,
                       "log2_N": math.log2(n),
                       "sample_definition": float(np.mean(
                           [s["sample_definition"][term] for s in samples[family]]))}
                if family == "discrete":
                    row["population"] = samples[family][0]["population"][term]
                    row["renyi2_truth"] = float(np.mean(
                        [s["renyi2"][term] for s in samples[family]]))
                if family == "linear-gaussian" and name in KDE:
                    row["kde_variance"] = kde_settings["kde_variance"]
                    if term == "ixt":
                        row["large_N_limit"] = kde_limits(d)[name]
                row["anomalies"] = anomalies(row, [s["h_y"] for s in samples[family]])
                rows.append(row)
    return rows, wall


BOUNDED_BY_HY = ("binning", "binning-width", "equal-mass", "kde-upper", "kde-lower")


def anomalies(row: dict, h_y: list[float]) -> list[str]:
    """What in a row's estimates looks wrong: NaN, I(X;T) outside [0, log2 N], and I(T;Y)
    outside [0, H(Y)] for the estimators whose formulas bound it so."""
    found, tol = [], 1e-4
    for value, hy in zip(row["estimates"], h_y, strict=True):
        if not math.isfinite(value):
            found.append(f"non-finite {value}")
        elif row["term"] == "ixt" and value > row["log2_N"] + tol:
            found.append(f"I(X;T) = {value:.5f} > log2 N = {row['log2_N']:.5f}")
        elif row["estimator"] != "knn" and value < -tol:
            found.append(f"negative {TERM[row['term']]} = {value:.5f}")
        elif row["term"] == "ity" and row["estimator"] in BOUNDED_BY_HY and value > hy + tol:
            found.append(f"I(T;Y) = {value:.5f} > H(Y) = {hy:.5f}")
    return found


def print_table(rows: list[dict], sizes: list[int], widths: list[int]) -> None:
    for family, term in PANELS:
        for n in sizes:
            cells = {(r["estimator"], r["d"]): r for r in rows
                     if r["family"] == family and r["term"] == term and r["N"] == n}
            print(f"\n{family}, {TERM[term]}, N = {n} (log2 N = {math.log2(n):.0f}): "
                  "bias +- spread (bits)")
            print(f"{'d':>14s}" + "".join(f"{d:>16d}" for d in widths))
            print(f"{'truth':>14s}" + "".join(f"{cells[('binning', d)]['truth']:16.3f}"
                                              for d in widths))
            for name in ESTIMATORS:
                print(f"{name:>14s}" + "".join(
                    f"{cells[(name, d)]['bias']:+9.3f}+-{cells[(name, d)]['spread']:5.3f}"
                    for d in widths))


def markdown_table(rows: list[dict], n: int, widths: list[int]) -> str:
    """One markdown table: estimators down, (family, term, d) across, at N = n."""
    lines = []
    for family, term in PANELS:
        cells = {(r["estimator"], r["d"]): r for r in rows
                 if r["family"] == family and r["term"] == term and r["N"] == n}
        lines.append(f"\n**{family}, {TERM[term]}**, N = {n}: bias ± spread, bits\n")
        lines.append("| estimator | " + " | ".join(f"d = {d}" for d in widths) + " |")
        lines.append("| --- |" + " ---: |" * len(widths))
        lines.append("| *truth* | " + " | ".join(f"*{cells[('binning', d)]['truth']:.3f}*"
                                                   for d in widths) + " |")
        for name in ESTIMATORS:
            lines.append(f"| {name} | " + " | ".join(
                f"{cells[(name, d)]['bias']:+.3f} ± {cells[(name, d)]['spread']:.3f}"
                for d in widths) + " |")
    return "\n".join(lines)


def draw_figure(rows: list[dict], sizes: list[int], widths: list[int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_top = max(sizes)
    d_bottom = 4 if 4 in widths else widths[len(widths) // 2]
    colors = dict(zip(ESTIMATORS, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(2, len(PANELS), figsize=(4.2 * len(PANELS), 8), squeeze=False)
    for column, (family, term) in enumerate(PANELS):
        for row_index, (axis_name, fixed, values) in enumerate(
                (("d", ("N", n_top), widths), ("N", ("d", d_bottom), sizes))):
            ax = axes[row_index, column]
            for offset, name in enumerate(ESTIMATORS):
                points = sorted((r[axis_name], r["bias"], r["spread"]) for r in rows
                                if r["family"] == family and r["term"] == term
                                and r["estimator"] == name and r[fixed[0]] == fixed[1])
                if not points:
                    continue
                xs, bias, spread = (np.array(v, float) for v in zip(*points, strict=True))
                xs = xs * 2 ** ((offset - 3) * 0.04)  # dodge
                ax.errorbar(xs, bias, yerr=spread, marker="o", ms=3.5, lw=1.2, capsize=2,
                            color=colors[name], label=name)
            selected = sorted((r[axis_name], r) for r in rows
                              if r["family"] == family and r["term"] == term
                              and r["estimator"] == "binning" and r[fixed[0]] == fixed[1])
            if family != "discrete":  # the sample's own value: log2 N or H(Y)
                xs = [v for v, _ in selected]
                ax.plot(xs, [r["sample_definition"] - r["truth"] for _, r in selected],
                        color="grey", ls=":", lw=1.5,
                        label="sample's own value (log2 N or H(Y))")
            if (family, term) == ("linear-gaussian", "ixt"):
                for name in KDE:
                    limits = sorted((r[axis_name], r["large_N_limit"] - r["truth"]) for r in rows
                                    if r["family"] == family and r["term"] == term
                                    and r["estimator"] == name and r[fixed[0]] == fixed[1])
                    ax.plot(*zip(*limits, strict=True), color=colors[name], ls="--", lw=1,
                            label=f"{name}: large-N limit")
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_xticks(values)
            ax.set_xticklabels([str(v) for v in values])
            ax.set_yscale("symlog", linthresh=0.1, linscale=0.6)
            top = max(0.2, max(abs(line.get_ydata()).max() for line in ax.lines[:-1]) * 1.4)
            ticks = [v for v in (0.1, 0.3, 1, 3, 10) if v <= top]
            ax.set_ylim(-top, top)
            ax.set_yticks([-v for v in ticks[::-1]] + [0] + ticks)
            ax.set_yticklabels([f"{-v:g}" for v in ticks[::-1]] + ["0"]
                               + [f"+{v:g}" for v in ticks])
            if (row_index, column) == (0, 3):
                extra = [(h, lab) for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)
                         if "limit" in lab or "sample" in lab]
                ax.legend(*zip(*extra, strict=True), fontsize=7, loc="center right")
            ax.grid(True, which="major", alpha=0.3)
            ax.set_xlabel("width d" if axis_name == "d" else "rows N")
            ax.set_title(f"{family}: {TERM[term]}\n{fixed[0]} = {fixed[1]}", fontsize=10)
            if column == 0:
                ax.set_ylabel("bias = estimate - truth (bits, symlog)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(ESTIMATORS) + 1, fontsize=9)
    fig.suptitle("ibjax.mi calibration: bias (mean of estimate - truth) with spread bars "
                 "(std over draws)", fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rounded(value, places: int = 6):
    """``value`` with every float rounded to ``places`` decimals (estimates are float32)."""
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {k: rounded(v, places) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, places) for v in value]
    return value


def write_json(path: str, results: dict) -> None:
    """``results`` as indented JSON, except one line per row of ``results["rows"]`` (floats
    in the rows rounded to 1e-6 bits)."""
    rows = results.pop("rows")
    head = json.dumps({**results, "rows": []}, indent=1)
    body = ",\n  ".join(json.dumps(rounded(row)) for row in rows)
    with open(path, "w") as handle:
        handle.write(head[:head.rindex("[]")] + "[\n  " + body + "\n ]\n}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: N = 256, d in {1, 8}, 3 draws")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--figure", help="also draw the figure here (PNG)")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the largest N as markdown tables")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.widths, args.draws = [256], [1, 8], 3
    started = time.perf_counter()
    hardware = {**hardware_info(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                "processor": platform.processor(), "machine": platform.machine()}
    print("hardware:", json.dumps(hardware))
    truth_b = gaussian_truth()
    print(f"family B truth: I(T;Y) = {truth_b['ity']:.12f} bits (quad error estimate "
          f"{truth_b['quad_error_estimate']:.1e}; Gauss-Hermite 200: "
          f"{truth_b['gauss_hermite_200']:.12f})")
    print(f"family C: I(X;T) = {CHANNEL_BITS} bits at every width; sigma^2 by width: "
          + ", ".join(f"d={d}: {channel(d)[1]:.4g}" for d in args.widths))
    limits = {d: kde_limits(d) for d in args.widths}
    print("family C: large-N limits of the KDE bounds' I(X;T) (upper / lower): " + ", ".join(
        f"d={d}: {limits[d]['kde-upper']:.3f} / {limits[d]['kde-lower']:.3f}" for d in args.widths))
    population = discrete_population()
    print(f"family A population: H(T) = {population['ixt']:.4f} bits, I(T;Y) = "
          f"{population['ity']:.4f} bits (the truth used is each sample's own, exact)")
    rows, timings = [], []
    for n in args.sizes:
        for d in args.widths:
            cell_rows, wall = measure_cell(n, d, args.draws, args.seed)
            rows += cell_rows
            timings.append({"N": n, "d": d, "wall_s": round(wall, 2)})
            print(f"N = {n:5d}, d = {d:2d}: {wall:6.1f} s (compile included)", flush=True)
    print_table(rows, args.sizes, args.widths)
    if args.markdown:
        print(markdown_table(rows, max(args.sizes), args.widths))
    problems = [(r["family"], r["term"], r["estimator"], r["N"], r["d"], a)
                for r in rows for a in r["anomalies"]]
    print(f"\nanomalies: {len(problems)}")
    for problem in problems:
        print("  ", problem)
    total = time.perf_counter() - started
    print(f"total {total:.0f} s")
    if args.figure:
        draw_figure(rows, args.sizes, args.widths, args.figure)
        print("figure:", args.figure)
    if args.json:
        write_json(args.json, {
            "what": "ibjax.mi calibration on synthetic layers of known MI",
            "date": datetime.date.today().isoformat(), "hardware": hardware,
            "settings": {**SETTINGS, "bin_range": list(SETTINGS["bin_range"])},
            "sizes": args.sizes, "widths": args.widths, "draws": args.draws, "seed": args.seed,
            "gaussian_truth": truth_b,
            "families": {
                "discrete": {"states": NUM_STATES, "decay": STATE_DECAY,
                             "label_flip": LABEL_FLIP, "min_separation": MIN_SEPARATION},
                "gaussian": {"class_std": CLASS_STD, "class_distance": CLASS_DISTANCE},
                "linear-gaussian": {"bits": CHANNEL_BITS, "unit_variance": UNIT_VARIANCE,
                                    "noise_variance": {str(d): channel(d)[1]
                                                       for d in args.widths}}},
            "timings": timings, "total_s": round(total, 1), "anomalies": problems,
            "rows": rows})
        print("json:", args.json)


if __name__ == "__main__":
    main()
