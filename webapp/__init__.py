"""The Flask web app: admin pages, the JSON API under ``/api/v1``, login, health."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.settings import Settings

if TYPE_CHECKING:
    from flask import Flask


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: migrate, load and warm up the model, open the store, register blueprints.

    ``settings`` defaults to ``Settings.from_env()``. The model and store live as long as the app.
    Flask is imported here, so the ``sigverify`` command line starts without it.
    """
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from webapp import accounts, admin, api, auth, health, signatures
    from webapp.access import check_every_view_declares_access, enforce_access
    from webapp.errors import register_error_handlers
    from webapp.security import configure_security
    from webapp.services import EXTENSION, start_services
    from webapp.templating import register_template_helpers

    settings = settings if settings is not None else Settings.from_env()
    app = Flask(__name__)
    configure_security(app, settings)
    app.extensions[EXTENSION] = start_services(settings)
    auth.init_login(app)
    app.before_request(enforce_access)
    csrf = CSRFProtect(app)
    csrf.exempt(api.bp)
    for blueprint in (auth.bp, health.bp, admin.bp, signatures.bp, accounts.bp):
        app.register_blueprint(blueprint)
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    register_error_handlers(app)
    register_template_helpers(app)
    check_every_view_declares_access(app)
    return app
