"""The model of the settings (loaded once per process and file) and the decision threshold."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from store.schema import Customer
from store.settings import Settings

if TYPE_CHECKING:
    from siamese.model import SignatureModel

_MODELS: dict[tuple[str, str, int, int], SignatureModel] = {}


def model_file(settings: Settings) -> Path:
    """The model file of these settings (the shipped weights by default)."""
    from siamese.model import SHIPPED_MODEL

    return settings.model_path if settings.model_path is not None else SHIPPED_MODEL


def load_signature_model(settings: Settings) -> SignatureModel:
    """The SignatureModel of ``settings``, loaded once per process per file and runtime.

    Raises:
        ModelError: the file is missing or not a sigverify model, or the runtime is unknown.
    """
    from siamese.model import SignatureModel

    path = model_file(settings).resolve()
    key = (str(path), settings.model_runtime, *_file_stamp(path))
    if key not in _MODELS:
        _MODELS[key] = SignatureModel.load(path, runtime=settings.model_runtime)
    return _MODELS[key]


def _file_stamp(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def decision_threshold(settings: Settings, model: SignatureModel, customer: Customer | None = None) -> float:
    """The customer's threshold if set, else ``settings.threshold``, else the model's calibrated one."""
    if customer is not None and customer.threshold is not None:
        return float(customer.threshold)
    if settings.threshold is not None:
        return float(settings.threshold)
    return float(model.threshold)

