"""Failed logins in SQL: every process and server on one database counts them together.

The policy (which keys, what limit, how long a window) is the web layer's (``webapp.throttle``);
this module only stores, counts and deletes rows of ``login_failures``. A key is kept as its SHA-256,
so a password typed into the user name field never reaches the database in clear.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, or_, select

from store.database import Store
from store.schema import LoginFailure, as_utc


def key_hash(key: str) -> str:
    """The stored form of a throttle key: the hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def add_login_failures(
    store: Store, keys: Collection[str], at: datetime, expired_before: datetime
) -> list[int]:
    """Record one failure of each key at ``at`` and delete the keys' failures older than ``expired_before``.

    Returns:
        The new rows' ids, in the order of ``keys``.
    """
    hashes = [key_hash(key) for key in keys]
    with store.transaction() as session:
        session.execute(delete(LoginFailure).where(LoginFailure.key_hash.in_(hashes),
                                                   LoginFailure.failed_at <= expired_before))
        rows = [LoginFailure(key_hash=hashed, failed_at=at) for hashed in hashes]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def nth_newest_failure(
    store: Store, key: str, n: int, after: datetime, excluding: Collection[int] = ()
) -> datetime | None:
    """When the ``n``-th newest failure of ``key`` later than ``after`` happened (rows ``excluding`` aside).

    None when the key has fewer than ``n`` (at least 1) such failures.
    """
    query = (select(LoginFailure.failed_at)
             .where(LoginFailure.key_hash == key_hash(key), LoginFailure.failed_at > after)
             .order_by(LoginFailure.failed_at.desc(), LoginFailure.id.desc())
             .offset(n - 1).limit(1))
    if excluding:
        query = query.where(LoginFailure.id.not_in(list(excluding)))
    with store.sessions() as session:
        found = session.scalar(query)
    return None if found is None else as_utc(found)


def delete_login_failures(store: Store, ids: Collection[int] = (), keys: Collection[str] = ()) -> None:
    """Delete the failure rows ``ids`` and every failure of ``keys``."""
    conditions = []
    if ids:
        conditions.append(LoginFailure.id.in_(list(ids)))
    if keys:
        conditions.append(LoginFailure.key_hash.in_([key_hash(key) for key in keys]))
    if not conditions:
        return
    with store.transaction() as session:
        session.execute(delete(LoginFailure).where(or_(*conditions)))


def delete_expired_login_failures(store: Store, expired_before: datetime) -> int:
    """Delete every failure of any key older than ``expired_before``; returns how many went."""
    with store.transaction() as session:
        result = session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= expired_before))
        return int(getattr(result, "rowcount", 0) or 0)
