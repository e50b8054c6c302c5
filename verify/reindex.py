"""``sigverify reindex``: re-embed every stored reference image with the current model, then rebuild.

References are updated in batches, each batch one transaction, oldest first; a reference already
embedded by the current model is left alone, so an interrupted reindex continues where it stopped.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from store.consistency import IndexReport, rebuild_index
from store.database import Store, embedding_to_bytes
from store.schema import Reference

if TYPE_CHECKING:
    from siamese.model import SignatureModel

REINDEX_BATCH = 128


def canvas_from_png(data: bytes) -> np.ndarray:
    """The stored normalised canvas as a ``(H, W, 1)`` float32 array in [0, 1], refitted to this
    version's canvas size when it was stored at another (``siamese.preprocess.refit_canvas``)."""
    from siamese.preprocess import refit_canvas

    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    return refit_canvas(pixels / 255.0)


def reindex_references(
    store: Store, model: SignatureModel, progress: bool = True
) -> tuple[int, IndexReport]:
    """Re-embed references of other model versions with ``model``; returns (count, index report)."""
    from tqdm import tqdm

    stale = Reference.model_version != model.version
    with store.sessions() as session:
        total = int(session.scalar(select(func.count(Reference.id)).where(stale)) or 0)
    done = 0
    with tqdm(total=total, unit="ref", disable=not progress, desc="reindex") as bar:
        while True:
            with store.transaction() as session:
                rows = list(session.scalars(
                    select(Reference).where(stale).order_by(Reference.id).limit(REINDEX_BATCH)
                ))
                if not rows:
                    break
                batch = np.stack([canvas_from_png(row.image_png) for row in rows])
                for row, vector in zip(rows, model.embed_preprocessed(batch)):
                    row.embedding = embedding_to_bytes(vector)
                    row.model_version = model.version
            done += len(rows)
            bar.update(len(rows))
    return done, rebuild_index(store, model.version, "reindex")
