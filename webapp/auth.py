"""Login and logout (Flask-Login sessions, hashed passwords, rate-limited attempts)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, login_user, logout_user
from werkzeug.security import check_password_hash, generate_password_hash

from store.users import MIN_PASSWORD_LENGTH, UserRecord, find_credentials, get_user, set_password_hash
from webapp.access import PUBLIC, VIEW, current_principal, requires
from webapp.errors import BadRequestError
from webapp.inputs import CONTROL_CHARACTERS, form_text
from webapp.services import services

bp = Blueprint("auth", __name__)

# Checked when the user name is unknown, so that a wrong name costs as long as a wrong password.
_UNKNOWN_USER_HASH = generate_password_hash("no such user")


class WebUser(UserMixin):
    """The logged-in user of a page request."""

    def __init__(self, record: UserRecord) -> None:
        self.id = record.id
        self.username = record.username
        self.role = record.role


def init_login(app: Flask) -> None:
    """Attach Flask-Login: users are reloaded from SQL on each request, disabled users are out."""
    manager = LoginManager(app)
    manager.login_view = "auth.login"
    manager.login_message = "Please log in."
    manager.login_message_category = "info"

    @manager.user_loader
    def load_user(user_id: str) -> WebUser | None:
        record = get_user(services().store, int(user_id)) if user_id.isdigit() else None
        return WebUser(record) if record is not None and record.active else None


@bp.route("/login", methods=["GET", "POST"])
@requires(PUBLIC)
def login() -> Any:
    """The login form; on success go to the page asked for (same site only) or the dashboard."""
    if request.method == "GET":
        return render_template("login.html", next=_safe_next(request.args.get("next")))
    username = form_text("username", required=False)
    password = request.form.get("password", "")
    throttle = services().throttle
    attempt = throttle.start(username, request.remote_addr)  # a failure unless it succeeds (429 if blocked)
    found = find_credentials(services().store, username) if username else None
    password_hash = found[1] if found else _UNKNOWN_USER_HASH
    valid = check_password_hash(password_hash, password)
    if found is None or not valid or not found[0].active:
        flash("Wrong user name or password, or the user is disabled.", "error")
        return render_template("login.html", next=_safe_next(request.form.get("next"))), 401
    throttle.succeeded(attempt)
    session.clear()
    login_user(WebUser(found[0]))
    return redirect(_safe_next(request.form.get("next")) or url_for("admin.dashboard"))


@bp.route("/logout", methods=["POST"])
@requires(VIEW)
def logout() -> Any:
    """End the session."""
    logout_user()
    session.clear()
    flash("Logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
@requires(VIEW)
def own_password() -> Any:
    """Any user changes their own password (the current one is asked again)."""
    if request.method == "GET":
        return render_template("own_password.html", min_password=MIN_PASSWORD_LENGTH)
    principal = current_principal()
    found = find_credentials(services().store, principal.username) if principal else None
    if found is None or not check_password_hash(found[1], request.form.get("current_password", "")):
        flash("The current password is wrong.", "error")
        return render_template("own_password.html", min_password=MIN_PASSWORD_LENGTH), 400
    set_password_hash(services().store, found[0].id, new_password_hash())
    flash("Your password is changed.", "success")
    return redirect(url_for("admin.dashboard"))


def new_password_hash() -> str:
    """The hash of the form's ``password`` field, which must have at least 10 characters."""
    password = request.form.get("password", "")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequestError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return generate_password_hash(password)


def _safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, no host), else None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:  # browsers read a backslash in a path as a slash
        return None
    if CONTROL_CHARACTERS.search(target):  # a line break cannot go into a Location header
        return None
    return target
