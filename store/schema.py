"""The SQL schema: customers, references, the verification audit, users, API keys, failed logins.

SQL is the source of truth. Alembic migrations in ``migrations/`` create these tables; tests check
that autogenerate finds no difference between the migrations and these models.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CUSTOMER_ID_MAX_LENGTH = 64
EMBEDDING_DIM = 256
STATUS_ACTIVE = "active"
STATUS_SUSPENDED = "suspended"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite gives back naive times, which are UTC here)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    """:func:`as_utc`, passing None through."""
    return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    """Declarative base on a MetaData with a naming convention, so constraints have stable names."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Customer(Base):
    """A bank customer, known by the external ID the bank gave us."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(CUSTOMER_ID_MAX_LENGTH), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=STATUS_ACTIVE)
    threshold: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    references: Mapped[list[Reference]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", passive_deletes=True,
        order_by="Reference.id",
    )


class Reference(Base):
    """One enrolled reference signature: the normalised image (PNG) and its embedding."""

    __tablename__ = "references"
    __table_args__ = (
        UniqueConstraint("customer_id", "sha256", name="uq_references_customer_sha256"),
        # A customer's references of one model version (verification, the enrollment cross-match);
        # its leading column also serves look-ups by customer alone and the foreign key.
        Index("ix_references_customer_id_model_version", "customer_id", "model_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    image_png: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    model_version: Mapped[str] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                 onupdate=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="references")


class Verification(Base):
    """Audit row of one verification decision; it outlives the customer and holds no biometrics."""

    __tablename__ = "verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_external_id: Mapped[str] = mapped_column(String(CUSTOMER_ID_MAX_LENGTH), index=True)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    score: Mapped[float] = mapped_column(Float)
    reference_scores: Mapped[list[Any]] = mapped_column(JSON)
    best_reference_id: Mapped[int | None] = mapped_column(
        ForeignKey("references.id", ondelete="SET NULL")
    )
    decision: Mapped[bool] = mapped_column(Boolean)
    threshold: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(80))
    query_sha256: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class User(Base):
    """A staff member of the web app (admin pages and API)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32), default="operator")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """An API key of a user; only a hash of the secret is kept."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailure(Base):
    """One failed login for a throttle key (a user name or a client address), counted by every server.

    Only a SHA-256 of the key is kept, so a password typed into the user name field is not stored.
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_hash_failed_at", "key_hash", "failed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
