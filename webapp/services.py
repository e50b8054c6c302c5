"""What one web process holds: settings, the store, the model, the login throttle; built once at start."""

from __future__ import annotations

import logging
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import current_app
from werkzeug.security import generate_password_hash

from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH
from store.consistency import references_of_other_models, sync_index
from store.database import Store
from store.errors import UserExistsError
from store.migrate import upgrade_database
from store.settings import Settings
from store.users import ADMIN, count_users, create_user
from verify.runtime import decision_threshold, load_signature_model
from webapp.throttle import LoginThrottle

if TYPE_CHECKING:
    from siamese.model import SignatureModel

log = logging.getLogger(__name__)

EXTENSION = "sigverify"
FIRST_ADMIN = "admin"


@dataclass
class Services:
    """The process-wide objects the views use.

    ``index_lock`` serialises the work that reads or changes the in-memory FAISS index
    (enrollment, deletion, identification) between the server's threads.
    """

    settings: Settings
    store: Store
    model: Any
    throttle: LoginThrottle
    index_lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def threshold(self) -> float:
        """The global decision threshold (settings, else the model's calibrated one)."""
        return decision_threshold(self.settings, self.model)

    @contextmanager
    def index_access(self) -> Iterator[Store]:
        """Hold the index lock, first catching up with references other processes wrote to SQL."""
        with self.index_lock:
            sync_index(self.store, self.model.version)
            yield self.store

    def close(self) -> None:
        """Write the index changes its file lacks and release the database connections (clean stop)."""
        with self.index_lock:
            self.store.close()


def start_services(settings: Settings) -> Services:
    """Migrate the database, load and warm up the model, open the store and sync its index."""
    upgrade_database(settings)
    model = load_signature_model(settings)
    warm_up(model)
    store = Store(settings)
    try:
        sync_index(store, model.version)
        warn_of_other_model_references(store, model.version)
        bootstrap_admin(store, settings)
    except BaseException:
        store.close()
        raise
    throttle = LoginThrottle(store, settings.login_max_attempts, settings.login_window_seconds)
    return Services(settings, store, model, throttle)


def warn_of_other_model_references(store: Store, model_version: str) -> None:
    """Log, at start, references another model embedded: their customers cannot be verified yet."""
    others = references_of_other_models(store, model_version)
    if others:
        log.warning("%d references were embedded by another model than %s: their customers answer "
                    "model_version_mismatch until `sigverify reindex` re-embeds them", others,
                    model_version[:12])


def warm_up(model: SignatureModel) -> None:
    """Run the network once so the first request does not pay for tracing it."""
    vectors = model.embed_preprocessed(np.zeros((1, CANVAS_HEIGHT, CANVAS_WIDTH, 1), dtype=np.float32))
    model.score(vectors, vectors)


def bootstrap_admin(store: Store, settings: Settings) -> str | None:
    """With no user at all, create the admin ``admin``; returns the password when it was generated.

    The password is ``settings.admin_password`` or, when that is empty, a random one printed once on
    stderr.
    """
    if count_users(store):
        return None
    password = settings.admin_password or secrets.token_urlsafe(12)
    try:
        create_user(store, FIRST_ADMIN, generate_password_hash(password), ADMIN)
    except UserExistsError:  # another process created it first
        return None
    if settings.admin_password:
        print(f"sigverify: created user {FIRST_ADMIN!r} (role admin) with the password of "
              "SIGVERIFY_ADMIN_PASSWORD", file=sys.stderr, flush=True)
        return None
    print(f"sigverify: created user {FIRST_ADMIN!r} (role admin) with password {password} "
          "(shown once: change it after logging in)", file=sys.stderr, flush=True)
    return password


def services() -> Services:
    """The Services of the current app."""
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]
