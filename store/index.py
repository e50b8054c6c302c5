"""VectorIndex: FAISS inner-product search over reference embeddings, keyed by reference row id.

A flat index (``IndexIDMap2`` over ``IndexFlatIP``) by default; an ``IndexIVFFlat`` once a build has at
least ``ivf_min_size`` vectors. Both support deletion by id. Files are written atomically (temp
file, fsync, rename) with a JSON metadata file beside them: model version, dimension, count, last
id, the sum of the ids and the sha256 of the index bytes, so truncation or garbage is detected.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from store.errors import IndexCorruptError

META_FORMAT = 1
HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class IndexSummary:
    """What identifies the contents of an index: compared with the same summary of SQL."""

    model_version: str
    count: int
    last_id: int
    id_sum: int


class VectorIndex:
    """FAISS index of unit vectors for one model version, ids = reference row ids."""

    def __init__(self, dim: int, model_version: str, index: Any = None, nprobe: int = 64) -> None:
        self.dim = dim
        self.model_version = model_version
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.nprobe = nprobe
        self._apply_nprobe()

    @classmethod
    def build(
        cls, dim: int, model_version: str, ids: np.ndarray, vectors: np.ndarray,
        ivf_min_size: int = 100_000, nprobe: int = 64,
    ) -> VectorIndex:
        """A new index holding ``vectors`` under ``ids``; IVF when there are ``ivf_min_size`` or more."""
        vectors = _as_matrix(vectors, dim)
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) >= max(ivf_min_size, 1):
            nlist = int(min(len(ids), max(16, min(4096, np.sqrt(len(ids))))))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: nlist * 40]]
            index.train(sample)
            built = cls(dim, model_version, index, nprobe)
        else:
            built = cls(dim, model_version, nprobe=nprobe)
        built.add(ids, vectors)
        return built

    @property
    def kind(self) -> str:
        """``"flat"`` or ``"ivf"``."""
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def set_nprobe(self, nprobe: int) -> None:
        """How many IVF lists a search visits (more: slower, better recall); no effect on flat."""
        self.nprobe = nprobe
        self._apply_nprobe()

    def _apply_nprobe(self) -> None:
        if isinstance(self._index, faiss.IndexIVF):
            self._index.nprobe = self.nprobe

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given reference ids (ids must not be present already)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids):
            self._index.add_with_ids(_as_matrix(vectors, self.dim), ids)

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids; returns how many were present."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(ids))  # type: ignore[arg-type]

    def ids(self) -> np.ndarray:
        """All ids in the index, sorted."""
        if isinstance(self._index, faiss.IndexIVF):
            lists: Any = self._index.invlists
            parts = [
                faiss.rev_swig_ptr(lists.get_ids(number), lists.list_size(number)).copy()
                for number in range(self._index.nlist)
                if lists.list_size(number)
            ]
            found = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        else:
            found = faiss.vector_to_array(self._index.id_map)
        return np.sort(found.astype(np.int64))

    def summary(self) -> IndexSummary:
        """Model version, count, last id and id sum of the contents."""
        ids = self.ids()
        last = int(ids[-1]) if len(ids) else 0
        return IndexSummary(self.model_version, len(ids), last, int(ids.sum()))

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product top-``k`` of each query row: ``(scores, ids)``; missing hits have id -1."""
        queries = _as_matrix(vectors, self.dim)
        if len(self) == 0 or k <= 0:
            shape = (len(queries), max(k, 0))
            return np.zeros(shape, dtype=np.float32), np.full(shape, -1, dtype=np.int64)
        scores, ids = self._index.search(queries, k)
        return scores, ids

    def save(self, path: Path, meta_path: Path) -> None:
        """Write the index and then its metadata, each atomically.

        The index is streamed to its temp file by FAISS instead of being serialised in memory first:
        one buffer the size of the index per save fragmented the heap, so a server's memory grew with
        every enrollment (see README, Reliability).
        """
        summary = self.summary()
        digest = write_atomic(path, self._write_to)
        meta = {
            "format": META_FORMAT, "kind": self.kind, "model_version": self.model_version,
            "dim": self.dim, "count": summary.count, "last_id": summary.last_id,
            "id_sum": summary.id_sum, "sha256": digest,
        }
        write_atomic(meta_path, json.dumps(meta, indent=1).encode())

    def _write_to(self, file_name: str) -> None:
        """Write the FAISS index into ``file_name``; a failed write (disk full) is an OSError."""
        try:
            faiss.write_index(self._index, file_name)
        except RuntimeError as error:
            raise OSError(f"FAISS could not write the index: {str(error).strip().splitlines()[-1]}") from None

    @classmethod
    def load(cls, path: Path, meta_path: Path, nprobe: int = 64) -> VectorIndex:
        """Read an index written by :meth:`save`.

        Raises:
            IndexCorruptError: a file is missing, unreadable, or disagrees with the metadata.
        """
        try:
            meta = json.loads(meta_path.read_text())
            data = path.read_bytes()
        except (OSError, ValueError) as error:
            raise IndexCorruptError(f"cannot read the index files: {error}") from None
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
            raise IndexCorruptError("the index metadata has an unknown format")
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise IndexCorruptError("the index file does not match its metadata (truncated or changed)")
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as error:
            raise IndexCorruptError(f"cannot decode the index file: {error}") from None
        loaded = cls(int(meta["dim"]), str(meta["model_version"]), index, nprobe)
        if loaded._index.d != loaded.dim or len(loaded) != int(meta["count"]):
            raise IndexCorruptError("the index file disagrees with its metadata")
        return loaded


def write_atomic(path: Path, data: bytes | Callable[[str], None]) -> str:
    """Write ``path`` through a temp file in the same folder, fsync, then rename; returns its sha256.

    ``data`` is the bytes, or a function that writes the temp file given its name.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            if isinstance(data, bytes):
                out.write(data)
        if callable(data):
            data(temp_name)
        digest = _fsync_and_hash(temp_name)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return digest


def _fsync_and_hash(file_name: str) -> str:
    """Flush the file to disk and return the sha256 of its contents, read in chunks."""
    digest = hashlib.sha256()
    with open(file_name, "rb") as written:
        for chunk in iter(lambda: written.read(HASH_CHUNK), b""):
            digest.update(chunk)
        os.fsync(written.fileno())
    return digest.hexdigest()


def _as_matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """A C-contiguous float32 ``(n, dim)`` array."""
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32).reshape(-1, dim))
    return matrix
