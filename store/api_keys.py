"""API keys of users: created, listed, disabled, rotated, and checked; only a hash is stored.

A key is ``svk_`` followed by 43 random URL-safe characters (256 bits). Because keys are random and
long, a plain SHA-256 of the key is stored (a slow password hash buys nothing here, and the unique
hash column finds the key in one indexed look-up). The first characters are kept to tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.database import Store
from store.errors import (
    ApiKeyNotFoundError,
    InvalidApiKeyError,
    InvalidApiKeyNameError,
    UserNotFoundError,
)
from store.schema import ApiKey, User, as_utc, as_utc_or_none, utcnow
from store.users import UserRecord

KEY_PREFIX = "svk_"
SHOWN_PREFIX_LENGTH = 12
NAME_MAX_LENGTH = 100
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as listed: never the secret, nor its hash."""

    id: int
    user_id: int
    username: str
    name: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """True until the key is disabled (or rotated)."""
        return self.revoked_at is None

    @classmethod
    def of(cls, row: ApiKey, username: str) -> ApiKeyRecord:
        """The record of an ``api_keys`` row."""
        return cls(row.id, row.user_id, username, row.name, row.key_prefix, as_utc(row.created_at),
                   as_utc_or_none(row.last_used_at), as_utc_or_none(row.revoked_at))


def hash_api_key(secret: str) -> str:
    """The stored form of a key: hex SHA-256 of its text."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(store: Store, user_id: int, name: str) -> tuple[ApiKeyRecord, str]:
    """A new key for the user; returns its record and the secret (shown once, never stored).

    Raises:
        UserNotFoundError, InvalidApiKeyNameError.
    """
    with store.transaction() as session:
        return _new_key(session, user_id, name)


def rotate_api_key(store: Store, key_id: int) -> tuple[ApiKeyRecord, str]:
    """Disable the key and create its replacement (same user and name) in one transaction.

    Raises:
        ApiKeyNotFoundError.
    """
    with store.transaction() as session:
        row = _revoked_key_row(session, key_id)
        return _new_key(session, row.user_id, row.name)


def disable_api_key(store: Store, key_id: int) -> ApiKeyRecord:
    """Disable (revoke) a key; it is kept, listed as disabled.

    Raises:
        ApiKeyNotFoundError.
    """
    with store.transaction() as session:
        row = _revoked_key_row(session, key_id)
        return ApiKeyRecord.of(row, _username(session, row.user_id))


def list_api_keys(store: Store) -> list[ApiKeyRecord]:
    """Every key (active first, then newest first) with its owner's name."""
    query = (select(ApiKey, User.username).join(User, User.id == ApiKey.user_id)
             .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc()))
    with store.sessions() as session:
        return [ApiKeyRecord.of(row, username) for row, username in session.execute(query)]


def authenticate_api_key(store: Store, secret: str) -> tuple[UserRecord, ApiKeyRecord]:
    """The active user and key that ``secret`` belongs to; notes when the key was last used.

    Raises:
        InvalidApiKeyError: unknown key, disabled key, or disabled user.
    """
    digest = hash_api_key(secret)
    with store.sessions() as session:
        found = session.execute(
            select(ApiKey, User).join(User, User.id == ApiKey.user_id).where(ApiKey.key_hash == digest)
        ).first()
    if found is None:
        raise InvalidApiKeyError("the API key is not valid")
    key, user = found
    if key.revoked_at is not None or not user.active:
        raise InvalidApiKeyError("the API key has been disabled")
    if _stale(key.last_used_at):
        with store.transaction() as session:
            row = session.get(ApiKey, key.id)
            if row is not None:
                row.last_used_at = utcnow()
    return UserRecord.of(user), ApiKeyRecord.of(key, user.username)


def _stale(last_used_at: datetime | None) -> bool:
    """True when ``last_used_at`` is unset or older than the resolution (few writes under load)."""
    return last_used_at is None or utcnow() - as_utc(last_used_at) >= LAST_USED_RESOLUTION


def _new_key(session: Session, user_id: int, name: str) -> tuple[ApiKeyRecord, str]:
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidApiKeyNameError(f"an API key name has 1 to {NAME_MAX_LENGTH} characters")
    username = _username(session, user_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(user_id=user_id, name=name, key_prefix=secret[:SHOWN_PREFIX_LENGTH],
                 key_hash=hash_api_key(secret))
    session.add(row)
    session.flush()
    return ApiKeyRecord.of(row, username), secret


def _username(session: Session, user_id: int) -> str:
    username = session.scalar(select(User.username).where(User.id == user_id))
    if username is None:
        raise UserNotFoundError(f"no user with id {user_id}")
    return username


def _revoked_key_row(session: Session, key_id: int) -> ApiKey:
    """The key's row, revoked now unless it already was."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyNotFoundError(f"no API key with id {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row
