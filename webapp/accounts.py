"""Admin pages for users (create, enable or disable, set password) and API keys (create, disable,
rotate; a new key is shown once, on the page that answers the request, and only its hash is kept)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from store.api_keys import ApiKeyRecord, create_api_key, disable_api_key, list_api_keys, rotate_api_key
from store.users import (
    MIN_PASSWORD_LENGTH,
    ROLES,
    create_user,
    list_users,
    set_password_hash,
    set_user_active,
)
from webapp.access import MANAGE, requires
from webapp.auth import new_password_hash
from webapp.inputs import form_text, int_value
from webapp.services import services

bp = Blueprint("accounts", __name__, url_prefix="/admin")

@bp.route("/users", methods=["GET", "POST"])
@requires(MANAGE)
def users() -> Any:
    """List users; create one (name, role, password)."""
    store = services().store
    if request.method == "POST":
        record = create_user(store, form_text("username", max_length=100), new_password_hash(),
                             form_text("role", max_length=32))
        flash(f"Created user {record.username} ({record.role}).", "success")
        return redirect(url_for("accounts.users"))
    return render_template("users.html", users=list_users(store), roles=ROLES,
                           min_password=MIN_PASSWORD_LENGTH)


@bp.route("/users/<int:user_id>/active", methods=["POST"])
@requires(MANAGE)
def user_active(user_id: int) -> Any:
    """Enable or disable a user (``active`` = 1 or 0); the last active admin stays."""
    active = int_value(request.form, "active", 0, 0, 1) == 1
    record = set_user_active(services().store, user_id, active)
    flash(f"User {record.username} {'enabled' if record.active else 'disabled'}.", "success")
    return redirect(url_for("accounts.users"))


@bp.route("/users/<int:user_id>/password", methods=["POST"])
@requires(MANAGE)
def user_password(user_id: int) -> Any:
    """Set a user's password."""
    set_password_hash(services().store, user_id, new_password_hash())
    flash("Password changed.", "success")
    return redirect(url_for("accounts.users"))


@bp.route("/api-keys", methods=["GET", "POST"])
@requires(MANAGE)
def api_keys() -> Any:
    """List API keys; create one for a user (the key is shown once)."""
    store = services().store
    if request.method == "POST":
        user_id = int_value(request.form, "user_id", 0, 1, 2**31)
        record, secret = create_api_key(store, user_id, form_text("name", max_length=100))
        return _show_once(record, secret, "created")
    return render_template("api_keys.html", keys=list_api_keys(store),
                           users=[user for user in list_users(store) if user.active])


@bp.route("/api-keys/<int:key_id>/disable", methods=["POST"])
@requires(MANAGE)
def api_key_disable(key_id: int) -> Any:
    """Disable a key at once."""
    record = disable_api_key(services().store, key_id)
    flash(f"API key {record.name} ({record.key_prefix}...) disabled.", "success")
    return redirect(url_for("accounts.api_keys"))


@bp.route("/api-keys/<int:key_id>/rotate", methods=["POST"])
@requires(MANAGE)
def api_key_rotate(key_id: int) -> Any:
    """Disable a key and create its replacement (shown once)."""
    record, secret = rotate_api_key(services().store, key_id)
    return _show_once(record, secret, "rotated")


def _show_once(record: ApiKeyRecord, secret: str, verb: str) -> Any:
    return render_template("api_key_created.html", key=record, secret=secret, verb=verb)
