"""VectorIndex: flat and IVF search, deletion, atomic save/load, corruption detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from store.errors import IndexCorruptError
from store.index import VectorIndex


def unit_rows(count: int, seed: int, dim: int = 256) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.mark.parametrize("ivf_min_size", [1_000_000, 100])
def test_search_finds_each_vector_itself_and_deletion_removes_it(ivf_min_size: int):
    vectors = unit_rows(400, 0)
    ids = np.arange(10, 410, dtype=np.int64)
    index = VectorIndex.build(256, "v1", ids, vectors, ivf_min_size=ivf_min_size, nprobe=64)
    assert index.kind == ("flat" if ivf_min_size > 400 else "ivf")
    scores, found = index.search(vectors[:5], 3)
    assert list(found[:, 0]) == list(ids[:5])
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    assert index.remove(np.array([10, 11, 9999])) == 2
    assert len(index) == 398
    _, found = index.search(vectors[:2], 1)
    assert 10 not in found and 11 not in found
    assert list(index.ids()) == list(ids[2:])


def test_summary_identifies_contents():
    index = VectorIndex.build(256, "v1", np.array([3, 5, 9]), unit_rows(3, 1))
    summary = index.summary()
    assert (summary.model_version, summary.count, summary.last_id, summary.id_sum) == ("v1", 3, 9, 17)
    empty = VectorIndex(256, "v1").summary()
    assert (empty.count, empty.last_id, empty.id_sum) == (0, 0, 0)


def test_search_of_an_empty_index_returns_no_hits():
    scores, ids = VectorIndex(256, "v1").search(unit_rows(2, 0), 4)
    assert ids.shape == (2, 4) and (ids == -1).all() and scores.shape == (2, 4)


@pytest.mark.parametrize("ivf_min_size", [1_000_000, 50])
def test_save_and_load_round_trip(tmp_path: Path, ivf_min_size: int):
    vectors = unit_rows(120, 2)
    index = VectorIndex.build(256, "v7", np.arange(1, 121), vectors, ivf_min_size=ivf_min_size)
    index.save(tmp_path / "vectors.index", tmp_path / "vectors.index.json")
    loaded = VectorIndex.load(tmp_path / "vectors.index", tmp_path / "vectors.index.json")
    assert loaded.model_version == "v7" and loaded.kind == index.kind
    assert list(loaded.ids()) == list(range(1, 121))
    assert not list(tmp_path.glob("*.tmp")), "temp files are renamed away"


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "meta_garbage", "meta_missing"])
def test_damaged_files_are_detected(tmp_path: Path, damage: str):
    index_path, meta_path = tmp_path / "vectors.index", tmp_path / "vectors.index.json"
    VectorIndex.build(256, "v1", np.arange(1, 21), unit_rows(20, 3)).save(index_path, meta_path)
    if damage == "missing":
        index_path.unlink()
    elif damage == "truncated":
        index_path.write_bytes(index_path.read_bytes()[:1000])
    elif damage == "garbage":
        index_path.write_bytes(b"\x00garbage" * 500)
    elif damage == "meta_garbage":
        meta_path.write_text("{not json")
    else:
        meta_path.unlink()
    with pytest.raises(IndexCorruptError):
        VectorIndex.load(index_path, meta_path)
