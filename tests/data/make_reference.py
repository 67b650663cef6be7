"""Writes the reference results that ``tests/test_same_numbers.py`` compares against.

Made once, with the code of commit 07feafe (before the estimators moved to ``ibjax.mi`` and the
data became arguments of the compiled program), on the 2-core AMD EPYC CPU with the native
products: ``python tests/data/make_reference.py``. Rerunning it with later code would only
compare that code with itself, so do not, unless a change of numbers is intended and said.
"""

from pathlib import Path

import ibjax

HERE = Path(__file__).parent

REFERENCES = {
    # The paper network, corrected default (random split, shuffled batches), every estimator.
    "reference_default.nc": ibjax.Config(
        num_seeds=2, num_epochs=200, snapshots="every:40", mi_samples=512,
        estimators=("binning", "binning-width", "equal-mass", "kde-upper", "kde-lower")),
    # The authors' preset (first 80 %, unshuffled batches), a ReLU network binned on each
    # layer's own range, and a learning-rate pair in one program.
    "reference_authors_relu.nc": ibjax.Config.authors(
        num_seeds=2, num_epochs=120, snapshots="log:20", activation="relu",
        bin_range="layer", learning_rate=(4e-4, 1e-3)),
}


def main():
    for name, config in REFERENCES.items():
        ibjax.save(ibjax.run(config), HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
