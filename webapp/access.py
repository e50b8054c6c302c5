"""Who may do what: every view declares a permission, one check runs before every request.

Roles: admin (everything), operator (view, enroll, verify, compare, identify), auditor (view and
the audit log). Pages authenticate with the login session, the API with the ``X-API-Key`` header
(the key's user's role applies). A view without a declared permission makes ``create_app`` fail,
so no route can be left unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g, request
from flask_login import current_user

from store.api_keys import authenticate_api_key
from store.users import ADMIN, AUDITOR, OPERATOR
from webapp.errors import MissingApiKeyError, PermissionDeniedError
from webapp.inputs import form_flag
from webapp.services import services

PUBLIC = "public"
VIEW = "view"
OPERATE = "operate"
AUDIT = "audit"
MANAGE = "manage"
PERMISSIONS: dict[str, frozenset[str]] = {
    VIEW: frozenset({ADMIN, OPERATOR, AUDITOR}),
    OPERATE: frozenset({ADMIN, OPERATOR}),
    AUDIT: frozenset({ADMIN, AUDITOR}),
    MANAGE: frozenset({ADMIN}),
}
ACCESS_ATTRIBUTE = "sigverify_access"
PUBLIC_ENDPOINTS = frozenset({"static"})
API_BLUEPRINT = "api"
API_KEY_HEADER = "X-API-Key"

ViewT = TypeVar("ViewT", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who makes the current request: user name, role, and channel (``web`` or ``api``)."""

    username: str
    role: str
    channel: str

    def may(self, permission: str) -> bool:
        """True when the role grants ``permission``."""
        return self.role in PERMISSIONS[permission]


def requires(permission: str) -> Callable[[ViewT], ViewT]:
    """Declare the permission a view needs (``PUBLIC`` for none)."""
    if permission != PUBLIC and permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def mark(view: ViewT) -> ViewT:
        setattr(view, ACCESS_ATTRIBUTE, permission)
        return view

    return mark


def view_permission(app: Flask, endpoint: str) -> str | None:
    """The permission declared by the view of ``endpoint`` (``PUBLIC`` for the static files)."""
    if endpoint in PUBLIC_ENDPOINTS:
        return PUBLIC
    return getattr(app.view_functions.get(endpoint), ACCESS_ATTRIBUTE, None)


def check_every_view_declares_access(app: Flask) -> None:
    """Fail at start-up when a view has no declared permission."""
    missing = sorted(endpoint for endpoint in app.view_functions if view_permission(app, endpoint) is None)
    if missing:
        raise RuntimeError(f"views without a declared permission: {', '.join(missing)}")


def enforce_access() -> Any:
    """Before each request: authenticate (session or API key) and check the view's permission."""
    if request.endpoint is None:
        return None
    permission = view_permission(current_app, request.endpoint)
    if permission == PUBLIC:
        return None
    if request.blueprint == API_BLUEPRINT:
        g.principal = _api_principal()
    elif current_user.is_authenticated:
        g.principal = Principal(current_user.username, current_user.role, "web")
    else:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if permission is None or not g.principal.may(permission):
        raise PermissionDeniedError(f"the role {g.principal.role} may not do this")
    return None


def current_principal() -> Principal | None:
    """The authenticated principal of this request, if any."""
    return g.get("principal")


def _api_principal() -> Principal:
    secret = request.headers.get(API_KEY_HEADER, "").strip()
    if not secret:
        raise MissingApiKeyError(f"send an API key in the {API_KEY_HEADER} header")
    user, _ = authenticate_api_key(services().store, secret)
    return Principal(user.username, user.role, "api")


def actor() -> str:
    """The user name of this request, as written to the audit."""
    principal = current_principal()
    return principal.username if principal is not None else "unknown"


def force_requested() -> bool:
    """The form's ``force`` flag; only an admin may enroll despite a blocking warning."""
    force = form_flag("force")
    principal = current_principal()
    if force and (principal is None or not principal.may(MANAGE)):
        raise PermissionDeniedError("only an admin may enroll despite a blocking warning")
    return force
