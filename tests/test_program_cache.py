"""Programs kept between runs (ibjax.program_cache): a repeated run skips tracing, computes the
same numbers as a traced one, and a damaged or unwritable store only costs a trace."""

import numpy as np
import pytest

import ibjax
from ibjax import program, program_cache

# A configuration no other test compiles (the store is shared by the test session).
CONFIG = ibjax.Config(hidden=(5, 3), num_epochs=4, snapshots=(0, 2, 4), seed=23, num_seeds=3,
                      estimators=("binning", "kde-upper"))
VARIABLES = ("ixt", "ity", "grad_mean", "grad_std", "train_loss", "test_accuracy")


def assert_same(a, b):
    for var in VARIABLES:
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)


def stored_files():
    folder = program_cache.cache_dir("programs")
    return sorted(folder.glob("*.bin")) if folder.exists() else []


def test_a_stored_program_is_not_traced_again_and_gives_the_same_numbers(monkeypatch):
    assert program_cache.enabled()  # tests/conftest.py sets a compilation cache folder
    before = set(stored_files())
    program.compiled_program.cache_clear()
    traces = program.TRACE_COUNT["segment"]
    first = ibjax.run(CONFIG)
    assert program.TRACE_COUNT["segment"] == traces + 1
    (new_file,) = set(stored_files()) - before  # init and the segment, in one file

    program.compiled_program.cache_clear()  # as in a new process
    again = ibjax.run(CONFIG)
    assert program.TRACE_COUNT["segment"] == traces + 1  # loaded, not traced
    assert again.attrs["compile_s"] > 0
    assert_same(first, again)

    # Traced and compiled directly, without the store: the same numbers bit for bit.
    monkeypatch.setattr(program_cache, "enabled", lambda: False)
    program.compiled_program.cache_clear()
    direct = ibjax.run(CONFIG)
    assert program.TRACE_COUNT["segment"] == traces + 2
    assert_same(first, direct)
    monkeypatch.undo()

    # A damaged file is a miss: traced again, rewritten, same numbers. Cut short, or with
    # bytes changed in the middle of a program at the same size (which pickle and
    # jax.export would both have read, giving other numbers).
    good = new_file.read_bytes()
    flipped = bytearray(good)
    for i in range(len(good) // 3, len(good) // 3 + 64):
        flipped[i] ^= 0xFF
    for retraces, damaged in enumerate((good[:1000], bytes(flipped)), start=3):
        new_file.write_bytes(damaged)
        program.compiled_program.cache_clear()
        repaired = ibjax.run(CONFIG)
        assert program.TRACE_COUNT["segment"] == traces + retraces
        assert new_file.read_bytes() != damaged and len(new_file.read_bytes()) == len(good)
        assert_same(first, repaired)


def test_keys_separate_what_shapes_a_program():
    key = program_cache.program_key(CONFIG, 4, ("cpu", 0))
    assert key == program_cache.program_key(CONFIG, 4, ("cpu", 0))
    assert key != program_cache.program_key(CONFIG.replace(hidden=(5, 4)), 4, ("cpu", 0))
    assert key != program_cache.program_key(CONFIG.replace(estimators=("binning",)), 4,
                                            ("cpu", 0))
    assert key != program_cache.program_key(CONFIG, 8, ("cpu", 0))
    assert key != program_cache.program_key(CONFIG, 4, ("cpu", 1))


def test_keys_change_with_ibjax_source(tmp_path, monkeypatch):
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(program_cache, "_PACKAGE", tmp_path)
    program_cache._environment_digest.cache_clear()
    before = program_cache.program_key(CONFIG)
    (tmp_path / "a.py").write_text("x = 2\n")
    program_cache._environment_digest.cache_clear()
    assert program_cache.program_key(CONFIG) != before
    monkeypatch.undo()
    program_cache._environment_digest.cache_clear()


def test_unreadable_and_unwritable_stores_are_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("IBJAX_CACHE_DIR", str(tmp_path / "not-a-folder"))
    (tmp_path / "not-a-folder").write_text("a file where the cache folder should be")
    assert program_cache.load("0" * 32) is None
    with pytest.warns(UserWarning, match="could not store the compiled program"):
        assert not program_cache.save("0" * 32, program_cache.Stored({}, {}))
    monkeypatch.setenv("IBJAX_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "programs").mkdir(parents=True)
    (tmp_path / "cache" / "programs" / f"{'1' * 32}.bin").write_bytes(b"not a pickle")
    assert program_cache.load("1" * 32) is None
    (tmp_path / "cache" / "programs" / f"{'2' * 32}.bin").mkdir()  # a folder in the way
    assert program_cache.load("2" * 32) is None
    with pytest.warns(UserWarning, match="later runs will trace and compile it again"):
        assert not program_cache.save("2" * 32, program_cache.Stored({}, {}))
