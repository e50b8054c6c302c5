"""Staff users of the web app: roles, creation, listing, enabling and disabling, password hashes.

Passwords never reach this module: callers pass a hash (the web layer uses ``werkzeug.security``),
so the store stays free of web dependencies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.database import Store
from store.errors import (
    InvalidRoleError,
    InvalidUsernameError,
    LastAdminError,
    UserExistsError,
    UserNotFoundError,
)
from store.schema import User, as_utc

ADMIN = "admin"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = (ADMIN, OPERATOR, AUDITOR)
MIN_PASSWORD_LENGTH = 10  # checked by the callers that hash passwords (web app, command line)
USERNAME_MAX_LENGTH = 100
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


@dataclass(frozen=True)
class UserRecord:
    """A user as the rest of sigverify sees it (never the password hash)."""

    id: int
    username: str
    role: str
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, row: User) -> UserRecord:
        """The record of a ``users`` row."""
        return cls(row.id, row.username, row.role, bool(row.active), as_utc(row.created_at))


def validate_username(username: object) -> str:
    """Return ``username`` if valid (1-100 of ``A-Z a-z 0-9 . _ @ -``, starting alphanumeric)."""
    if not isinstance(username, str) or not username:
        raise InvalidUsernameError("the user name is empty")
    if len(username) > USERNAME_MAX_LENGTH or not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUsernameError(
            f"the user name {username[:USERNAME_MAX_LENGTH]!r} may only hold up to {USERNAME_MAX_LENGTH} "
            "letters, digits, '.', '_', '@' and '-', and must start with a letter or digit"
        )
    return username


def validate_role(role: object) -> str:
    """Return ``role`` if it is one of :data:`ROLES`, else raise InvalidRoleError."""
    if role not in ROLES:
        raise InvalidRoleError(f"the role {role!r} is not one of {', '.join(ROLES)}")
    return str(role)


def create_user(store: Store, username: str, password_hash: str, role: str) -> UserRecord:
    """Create an active user.

    Raises:
        InvalidUsernameError, InvalidRoleError, UserExistsError.
    """
    validate_username(username)
    validate_role(role)
    try:
        with store.transaction() as session:
            if session.scalar(select(User.id).where(User.username == username)) is not None:
                raise UserExistsError(f"a user named {username!r} already exists")
            row = User(username=username, password_hash=password_hash, role=role, active=True)
            session.add(row)
            session.flush()
            return UserRecord.of(row)
    except IntegrityError:
        raise UserExistsError(f"a user named {username!r} already exists") from None


def count_users(store: Store) -> int:
    """How many users exist (active or not)."""
    with store.sessions() as session:
        return int(session.scalar(select(func.count(User.id))) or 0)


def list_users(store: Store) -> list[UserRecord]:
    """Every user, by name."""
    with store.sessions() as session:
        return [UserRecord.of(row) for row in session.scalars(select(User).order_by(User.username))]


def get_user(store: Store, user_id: int) -> UserRecord | None:
    """The user with this id, or None."""
    with store.sessions() as session:
        row = session.get(User, user_id)
        return UserRecord.of(row) if row is not None else None


def find_credentials(store: Store, username: str) -> tuple[UserRecord, str] | None:
    """The user named ``username`` and their password hash, or None when there is none."""
    with store.sessions() as session:
        row = session.scalar(select(User).where(User.username == username))
        return (UserRecord.of(row), row.password_hash) if row is not None else None


def set_user_active(store: Store, user_id: int, active: bool) -> UserRecord:
    """Enable or disable a user (a disabled user can neither log in nor use their API keys).

    Raises:
        UserNotFoundError, LastAdminError (disabling the last active admin).
    """
    with store.transaction() as session:
        row = _user_row(session, user_id)
        if not active and row.role == ADMIN and row.active and _active_admins(session) <= 1:
            raise LastAdminError(f"{row.username} is the last active admin")
        row.active = active
        return UserRecord.of(row)


def set_password_hash(store: Store, user_id: int, password_hash: str) -> None:
    """Replace a user's password hash.

    Raises:
        UserNotFoundError.
    """
    with store.transaction() as session:
        _user_row(session, user_id).password_hash = password_hash


def _user_row(session: Session, user_id: int) -> User:
    row = session.get(User, user_id)
    if row is None:
        raise UserNotFoundError(f"no user with id {user_id}")
    return row


def _active_admins(session: Session) -> int:
    query = select(func.count(User.id)).where(User.role == ADMIN, User.active.is_(True))
    return int(session.scalar(query) or 0)
