"""The result store: atomic writes, reproducible archives, corruption detected and named."""

import json
import os

import numpy as np
import pytest

# Internal machinery under test (not exported): the sweeps' on-disk run store.
from jaxescape._experiments.store import (
    LOCK_FILE,
    MANIFEST,
    CorruptedFileError,
    RunStore,
    npz_bytes,
)


ARRAYS = {"escape_step": np.arange(1000, dtype=np.int32) % 97,
          "censored": np.arange(1000) % 13 == 0, "dt": np.float64(0.01)}


def test_npz_is_reproducible_and_readable(tmp_path):
    first, second = npz_bytes(ARRAYS), npz_bytes(dict(reversed(list(ARRAYS.items()))))
    assert first == second
    path = tmp_path / "a.npz"
    path.write_bytes(first)
    with np.load(path) as archive:
        for name, array in ARRAYS.items():
            assert archive[name].dtype == np.asarray(array).dtype
            np.testing.assert_array_equal(archive[name], array)
    assert len(first) < sum(np.asarray(array).nbytes for array in ARRAYS.values())  # compressed


def test_committed_files_read_back_and_uncommitted_ones_are_ignored(tmp_path):
    store = RunStore(tmp_path / "run", create=True)
    store.write("points/a.npz", npz_bytes(ARRAYS))
    store.write("b.json", b'{"x": 1}\n')
    store.commit()
    store.write("c.txt", b"not committed")  # no commit: as if killed here
    reopened = RunStore(tmp_path / "run")
    assert reopened.files == ("b.json", "points/a.npz")
    assert reopened.read_json("b.json") == {"x": 1}
    np.testing.assert_array_equal(reopened.read_arrays("points/a.npz")["censored"],
                                  ARRAYS["censored"])
    assert reopened.corrupted() == {}
    assert reopened.problem("c.txt") == "not committed"
    assert not [name for name in os.listdir(tmp_path / "run") if name.endswith(".tmp")]


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda path: path.write_bytes(path.read_bytes()[:-10]), "truncated or altered"),
        (lambda path: path.write_bytes(path.read_bytes()[:-1] + b"!"), "altered (SHA-256"),
        (lambda path: path.unlink(), "missing"),
    ],
)
def test_damaged_files_are_named_and_never_read(tmp_path, damage, problem):
    store = RunStore(tmp_path, create=True)
    store.write("points/a.npz", npz_bytes(ARRAYS))
    store.write("ok.json", b"{}")
    store.commit()
    damage(tmp_path / "points" / "a.npz")
    reopened = RunStore(tmp_path)
    assert list(reopened.corrupted()) == ["points/a.npz"]
    assert problem in reopened.corrupted()["points/a.npz"]
    with pytest.raises(CorruptedFileError, match=r"points.a\.npz"):
        reopened.read_arrays("points/a.npz")
    assert reopened.read_json("ok.json") == {}


@pytest.mark.parametrize("text", [b'{"files": ', b"[]", b'{"format": 1, "files": {"a": 3}}'])
def test_a_corrupted_manifest_is_named(tmp_path, text):
    (tmp_path / MANIFEST).write_bytes(text)
    with pytest.raises(CorruptedFileError, match=r"manifest\.json is corrupted"):
        RunStore(tmp_path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    store = RunStore(tmp_path, create=True)
    store.write("a.json", b"old")
    store.commit()

    with pytest.raises(TypeError):
        store.write("a.json", None)  # the write itself fails
    assert (tmp_path / "a.json").read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == [LOCK_FILE, "a.json", MANIFEST]
    assert json.loads((tmp_path / MANIFEST).read_text())["files"]["a.json"]["bytes"] == 3
