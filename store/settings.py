"""The one Settings object, built from ``SIGVERIFY_*`` environment variables and CLI flags.

Nothing else in sigverify reads the environment: the CLI and the web app build a :class:`Settings`
once and pass it down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

ENV_PREFIX = "SIGVERIFY_"


@dataclass(frozen=True)
class Settings:
    """Configuration of one sigverify process.

    ``database_url`` and ``model_path`` default to values derived from ``data_dir`` and the
    shipped weights; ``threshold`` None means "the model's calibrated threshold". ``model_runtime``
    is what embeds (``siamese.litert``): "litert" (the flatbuffer beside the model file, when it
    matches the model) or "tensorflow".

    Enrollment policy (see ``enroll.policy``): ``enroll_consistency_threshold`` (None: the decision
    threshold) and ``enroll_cross_match_threshold`` (None: the decision threshold) set when the
    ``inconsistent_reference`` and ``matches_other_customer`` warnings fire;
    ``enroll_blocking_warnings`` is a comma-separated list of warning codes that reject the request
    unless it is forced ("" blocks none, "all" blocks every warning).

    Index file (``store.consistency``): ``index_save_every`` is how many vectors may be added to or
    removed from the in-memory index before its file is written again (it is also written at a clean
    close); 1 writes it after every change.

    Web app (``webapp``): ``max_request_bytes`` caps one HTTP request (all uploads together; one
    image is still capped by ``max_upload_bytes``); ``secret_key`` signs session cookies (empty: a
    random key kept in ``data_dir/secret_key``); ``admin_password`` is the first admin's password
    (empty: generated and printed once); ``login_max_attempts`` failed logins per user name or
    client address within ``login_window_seconds`` lock that name or address until the window
    passes; ``session_cookie_secure`` sends the session cookie over HTTPS only.

    Command line: ``tensorflow_log`` keeps TensorFlow's start-up INFO lines on stderr (hidden by
    default, see ``siamese.tensorflow_startup``).
    """

    data_dir: Path = Path("var")
    database_url: str = ""
    model_path: Path | None = None
    model_runtime: str = "litert"
    threshold: float | None = None
    ivf_min_size: int = 100_000
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    secret_key: str = ""
    admin_password: str = ""
    index_nprobe: int = 64
    index_save_every: int = 1000
    enroll_max_images: int = 20
    enroll_consistency_threshold: float | None = None
    enroll_cross_match_threshold: float | None = None
    enroll_blocking_warnings: str = "matches_other_customer"
    max_request_bytes: int = 50 * 1024 * 1024
    login_max_attempts: int = 5
    login_window_seconds: int = 300
    session_cookie_secure: bool = False
    tensorflow_log: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if not self.database_url:
            url = f"sqlite:///{(self.data_dir / 'sigverify.db').as_posix()}"
            object.__setattr__(self, "database_url", url)
        if self.model_path is not None:
            object.__setattr__(self, "model_path", Path(self.model_path))

    @property
    def index_path(self) -> Path:
        """The FAISS index file of reference embeddings."""
        return self.data_dir / "vectors.index"

    @property
    def index_meta_path(self) -> Path:
        """The metadata file written beside the FAISS index."""
        return self.data_dir / "vectors.index.json"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``SIGVERIFY_*`` variables; keyword overrides (CLI flags) win.

        Overrides whose value is None are ignored, so unset CLI flags fall back to the environment.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        extra: dict[str, str] = {}
        known = {f.name: f for f in fields(cls) if f.name != "extra"}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX):].lower()
            if name in known:
                values[name] = _convert(name, raw)
            else:
                extra[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["extra"] = extra
        return cls(**values)  # type: ignore[arg-type]

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with the given (non-None) fields replaced.

        A database URL that was derived from the old data dir follows a new data dir.
        """
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "data_dir" in changes and "database_url" not in changes:
            derived = Settings(data_dir=self.data_dir).database_url
            if self.database_url == derived:
                changes["database_url"] = ""
        return replace(self, **changes)  # type: ignore[arg-type]


def _convert(name: str, raw: str) -> object:
    """Turn one environment string into the type of the field ``name``."""
    if name in ("data_dir", "model_path"):
        return Path(raw) if raw else None
    if name in ("threshold", "enroll_consistency_threshold", "enroll_cross_match_threshold"):
        return float(raw) if raw else None
    if name in ("ivf_min_size", "max_upload_bytes", "max_image_pixels", "index_nprobe", "index_save_every",
                "enroll_max_images", "max_request_bytes", "login_max_attempts", "login_window_seconds"):
        return int(raw)
    if name in ("session_cookie_secure", "tensorflow_log"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return raw
