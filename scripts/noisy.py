"""Noise-injected networks (Goldfeld et al. 2019) on the paper task: sample-propagation I(X;T)
beside a clustering measure and the binned I(X;T) of the same networks.

    python scripts/noisy.py            # 20 seeds x 8000 epochs, tanh, beta 0.005, 40 snapshots,
                                       # 1024 MI rows, 4 noisy propagations (~15 min, 2 cores)
    python scripts/noisy.py --full     # 50 seeds, 100 snapshots, 8 propagations (GPU)

Goldfeld, van den Berg, Greenewald, Melnyk, Nguyen, Kingsbury & Polyanskiy (2019), "Estimating
information flow in deep neural networks", ICML: with independent N(0, beta^2) noise on every
hidden unit, I(X;T_l) is finite; they estimate it by sample propagation and argue that its
compression is the clustering of the hidden representations (inputs whose representations lie
within a few beta of each other become indistinguishable), and that the binned "I(X;T)" of a
deterministic network measures that clustering too.

The run: the paper's network (12-10-7-5-4-3-2, tanh, Adam 4e-4, minibatches of 512, 80% train)
trained with noise ``beta`` on every hidden unit (``Config.noise_std``); at every snapshot the
``noisy`` estimator (``noise_samples`` propagations of 1024 fixed rows) and the paper's
``binning`` of the same networks without noise, in one program. Then the same seeds are
replayed (the same trainer, so the same networks) to measure, at 12 of the snapshots, the
clustering of each hidden layer's noise-free representations on the same rows:

    clustering = log2 of the mean, over rows i, of #{rows j : |t_i - t_j| < 2 beta}

(0 bits when every row is alone, log2 N when all share one cluster). If Goldfeld et al. are
right, I(X;T) falls when clustering rises: the report gives, per layer, the Spearman
correlation over the 12 epochs (median over seeds) between the two.
"""

import time

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from _common import describe, parser, phase_table, run_or_load, write_report
from scipy.stats import spearmanr

import ibjax
from ibjax.mi._distances import squared_distances
from ibjax.train import make_trainer

CLUSTER_RADIUS = 2.0  # in units of beta


def clustering(config, results, num_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Replays the run's seeds and returns ``(epochs [E], clustering [seed, E, hidden])``."""
    dataset = ibjax.load_var_u()
    trainer = make_trainer(config, dataset)
    data = trainer.device_data(dataset)
    measured = results.epoch.values
    picks = np.unique(np.round(np.geomspace(1, len(measured), 12)).astype(int) - 1)
    epochs = measured[picks]
    radius2 = (CLUSTER_RADIUS * config.noise_std) ** 2
    hidden = len(config.hidden)

    def cluster_bits(params):
        out = []
        for t in trainer.layer_activations(params, data)[:hidden]:  # [width, N]
            d2 = squared_distances(t, t)  # [N, N]
            out.append(jnp.log2(jnp.mean(jnp.sum(d2 < radius2, axis=1).astype(jnp.float32))))
        return jnp.stack(out)

    rate = jnp.float32(config.learning_rates[0])
    state = jax.vmap(lambda s: trainer.init(s, rate))(jnp.arange(config.num_seeds))
    train = jax.jit(jax.vmap(trainer.train_steps, in_axes=(0, None, None)))
    measure = jax.jit(lambda params: jax.lax.map(cluster_bits, params))  # one seed at a time
    done, values = 0, []
    for epoch in epochs:
        state, _ = train(state, data, jnp.int32(epoch - done))
        done = int(epoch)
        values.append(np.asarray(measure(state.params)))
    return epochs, np.stack(values, axis=1)


def correlation_table(results, epochs, cluster) -> str:
    """Per hidden layer: noisy I(X;T) and clustering at the first and last of the 12 epochs
    (means over seeds), binned I(X;T) likewise, and the median Spearman correlation."""
    noisy = results.ixt.sel(estimator="noisy", epoch=epochs).values  # [seed, E, layer]
    binned = results.ixt.sel(estimator="binning", epoch=epochs).values
    lines = ["| layer | noisy I(X;T) first -> last | binned I(X;T) first -> last | clustering "
             "first -> last (bits) | Spearman(noisy I(X;T), clustering), median [2.5%, 97.5%] "
             "| Spearman(binned I(X;T), clustering) |",
             "| --- | --- | --- | --- | ---: | ---: |"]
    for i in range(cluster.shape[2]):
        rho = [spearmanr(noisy[s, :, i], cluster[s, :, i])[0] for s in range(noisy.shape[0])]
        rho_bin = [spearmanr(binned[s, :, i], cluster[s, :, i])[0]
                   for s in range(noisy.shape[0])]
        if np.all(np.isnan(rho)):  # clustering or I(X;T) constant in every seed
            rho_text = "n/a (constant)"
        else:
            q = np.nanquantile(rho, [0.025, 0.5, 0.975])
            rho_text = f"{q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]"
        rho_bin_text = "n/a (constant)" if np.all(np.isnan(rho_bin)) else \
            f"{np.nanmedian(rho_bin):.2f}"
        lines.append(
            f"| {results.layer_name.values[i]} | {np.nanmean(noisy[:, 0, i]):.2f} -> "
            f"{np.nanmean(noisy[:, -1, i]):.2f} | {np.nanmean(binned[:, 0, i]):.2f} -> "
            f"{np.nanmean(binned[:, -1, i]):.2f} | {np.nanmean(cluster[:, 0, i]):.2f} -> "
            f"{np.nanmean(cluster[:, -1, i]):.2f} | {rho_text} | {rho_bin_text} |")
    return "\n".join(lines)


def figure(results, epochs, cluster, path) -> None:
    layers = cluster.shape[2]
    fig, axes = plt.subplots(1, layers, figsize=(3.2 * layers, 3.0), sharex=True)
    for i, ax in enumerate(axes):
        for name, style in (("noisy", "-"), ("binning", "--")):
            values = results.ixt.sel(estimator=name).isel(layer=i)
            ax.plot(results.epoch.values[1:], values.median("seed").values[1:], style,
                    color="C0", label=f"{name} I(X;T)")
        twin = ax.twinx()
        twin.plot(epochs[epochs > 0], np.median(cluster[:, epochs > 0, i], axis=0), "o-",
                  color="C3", ms=3, label="clustering")
        twin.tick_params(axis="y", colors="C3")
        ax.set_xscale("log")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(str(results.layer_name.values[i]))
        ax.set_xlabel("epoch")
        if i == 0:
            ax.set_ylabel("I(X;T), bits (median over seeds)")
            ax.legend(fontsize=7, loc="lower left")
        if i == layers - 1:
            twin.set_ylabel("clustering, bits", color="C3")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = parser(__doc__.splitlines()[0], "ibjax_runs/noisy")
    p.add_argument("--seeds", type=int, help="networks (20; 50 with --full)")
    p.add_argument("--epochs", type=int, default=8000, help="(8000)")
    p.add_argument("--beta", type=float, default=0.005, help="noise std on hidden units (0.005)")
    args = p.parse_args()
    started = time.perf_counter()
    config = ibjax.Config(
        num_seeds=args.seeds or (50 if args.full else 20), num_epochs=args.epochs,
        snapshots="log:100" if args.full else "log:40", noise_std=args.beta,
        noise_samples=8 if args.full else 4, mi_samples=1024,
        estimators=("noisy", "binning"))
    results = run_or_load(config, args.out / "tanh", args.fresh)
    replay_start = time.perf_counter()
    epochs, cluster = clustering(ibjax.config_of(results), results, args.epochs)
    replay_s = time.perf_counter() - replay_start
    figure(results, epochs, cluster, args.out / "noisy_vs_clustering.png")
    accuracy = results.test_accuracy.isel(epoch=-1).values
    sections = [
        f"{describe(results)}; noise std beta = {config.noise_std} on every hidden unit in "
        f"training; `noisy` with {config.noise_samples} propagations of "
        f"{results.attrs.get('mi_rows')} rows (I(X;T) at most log2 of that); final test "
        f"accuracy (noise-free network) median {np.nanmedian(accuracy):.3f}; clustering replay "
        f"{replay_s:.0f} s",
        "![noisy I(X;T), binned I(X;T) and clustering](noisy_vs_clustering.png)\n\n"
        "![information plane](tanh/information_plane.png)",
        f"## I(X;T) against clustering\n\nClustering: log2 of the mean number of rows within "
        f"{CLUSTER_RADIUS:g} beta of a row (noise-free representation), at 12 of the "
        f"snapshots.\n\n{correlation_table(results, epochs, cluster)}",
        f"## Phases\n\n{phase_table(results)}"]
    write_report(args.out / "report.md", "Noise-injected networks: sample propagation and "
                 "clustering", sections, started)


if __name__ == "__main__":
    main()
