import pytest

import ibjax
from ibjax import program
from ibjax.config import Config, ConfigError, snapshot_epochs


def test_authors_log_schedule_has_274_epochs():
    epochs = snapshot_epochs("log", 8000)
    assert len(epochs) == 274 and epochs[0] == 0 and epochs[-1] == 7999
    assert list(epochs) == sorted(set(epochs))


def test_other_schedules():
    assert snapshot_epochs("every:10", 35) == (0, 10, 20, 30)
    assert snapshot_epochs((5, 0, 5, 3), 10) == (0, 3, 5)
    assert len(snapshot_epochs("log:1800", 10000)) == 964  # the archived run's schedule


def test_authors_preset():
    cfg = Config.authors()
    assert (cfg.split, cfg.shuffle, cfg.optimizer, cfg.learning_rate, cfg.batch_size,
            cfg.num_epochs, cfg.num_bins, cfg.train_fraction) == (
        "first", False, "adam", 4e-4, 512, 8000, 30, 0.8)
    assert Config.authors(num_seeds=3).num_seeds == 3


def test_json_round_trip():
    cfg = Config(hidden=[4, 3], snapshots=[0, 2], bin_range=[-2, 2])
    assert Config.from_json(cfg.to_json()) == cfg
    assert hash(cfg) == hash(Config.from_json(cfg.to_json()))


BAD = [
    ({"activation": "sigmoid"}, "activation"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    ({"num_bins": 1}, "num_bins"),
    ({"bin_range": (1.0, 1.0)}, "bin_range"),
    ({"bin_range": (2.0, -1.0)}, "bin_range"),
    ({"num_seeds": 0}, "num_seeds"),
    ({"num_seeds": -3}, "num_seeds"),
    ({"num_epochs": 0}, "num_epochs"),
    ({"batch_size": 4000}, "batch_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"train_fraction": 0.0}, "train_fraction"),
    ({"train_fraction": 1.5}, "train_fraction"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"learning_rate": (1e-3, 1e-3)}, "learning_rate"),
    ({"learning_rate": ()}, "learning_rate"),
    ({"learning_rate": (1e-3, -2.0)}, "learning_rate"),
    ({"hidden": ()}, "hidden"),
    ({"hidden": (4, 0)}, "hidden"),
    ({"split": "middle"}, "split"),
    ({"snapshots": "often"}, "snapshots"),
    ({"snapshots": (0, 9000)}, "snapshots"),
    ({"snapshots": "every:0"}, "snapshots"),
    ({"num_epochs": 10**9, "snapshots": "every:1"}, "snapshots"),  # 10**9 + 1 snapshots
    ({"dataset": "mnist"}, "dataset"),
    ({"layer_product": "tf32"}, "layer_product"),
]


@pytest.mark.parametrize("overrides, field", BAD)
def test_bad_config_raises_before_compiling(overrides, field):
    traces = program.TRACE_COUNT["segment"]
    with pytest.raises(ConfigError, match=field):
        ibjax.run(Config(**{"num_epochs": 10, **overrides}))
    assert program.TRACE_COUNT["segment"] == traces


def test_unknown_json_field():
    with pytest.raises(ConfigError, match="unknown config fields"):
        Config.from_json('{"num_seeds": 2, "colour": "red"}')


def test_auto_defaults_resolve_by_activation_and_test_set():
    assert ibjax.Config().resolved_bin_range == (-1.0, 1.0)
    assert ibjax.Config(activation="relu").resolved_bin_range == "layer"
    assert ibjax.Config(activation="linear", bin_range=(0, 3)).resolved_bin_range == (0.0, 3.0)
    assert ibjax.Config().train_fraction_for(num_test=0) == 0.8
    assert ibjax.Config().train_fraction_for(num_test=10) == 1.0
    assert ibjax.Config(train_fraction=0.5).train_fraction_for(num_test=10) == 0.5


def test_new_fields_round_trip_through_json():
    cfg = ibjax.Config(estimators=["binning", "kde-lower"], mi_samples=500, bin_range="layer",
                       kde_variance=0.1, bin_width=0.5)
    assert cfg.estimators == ("binning", "kde-lower")
    assert ibjax.Config.from_json(cfg.to_json()) == cfg
    assert ibjax.Config(estimators="equal-mass").estimators == ("equal-mass",)


def test_numpy_integers_and_floats_are_accepted():
    """Counts and rates computed with numpy (np.int64, np.float32) are plain numbers to the
    config: accepted, hashed and saved like them."""
    import json

    import numpy as np

    from_numpy = Config(num_seeds=np.int64(4), hidden=(np.int64(5), 3), num_epochs=np.int32(7),
                        learning_rate=np.float64(1e-3), batch_size=np.int64(64),
                        shuffle=np.bool_(False)).validate()
    plain = Config(num_seeds=4, hidden=(5, 3), num_epochs=7, learning_rate=1e-3, batch_size=64,
                   shuffle=False)
    assert from_numpy == plain and hash(from_numpy) == hash(plain)
    assert json.loads(from_numpy.to_json())["num_seeds"] == 4
