"""``sigverify serve`` (the web app under waitress) and ``sigverify users`` (accounts and API keys)."""

from __future__ import annotations

import sys

import click

from store.api_keys import create_api_key
from store.cli import domain_errors
from store.database import Store
from store.migrate import upgrade_database
from store.settings import Settings
from store.users import (
    MIN_PASSWORD_LENGTH,
    ROLES,
    create_user,
    find_credentials,
    list_users,
    set_password_hash,
)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Threads per worker process (requests served at once).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes sharing the socket (up to one per core).")
@click.pass_obj
def serve_command(settings: Settings, host: str, port: int, threads: int, workers: int) -> None:
    """Serve the admin pages and the JSON API with waitress (production server, no debug mode)."""
    from webapp.server import serve

    def announce(url: str) -> None:
        click.echo(f"sigverify serving on {url} (log in at {url}login; Ctrl-C stops)", err=True)

    sys.exit(serve(settings, host, port, threads, workers, announce))


@click.group("users")
def users_group() -> None:
    """Web app users (admin, operator, auditor) and their API keys."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The password (prompted when not given).")
@click.pass_obj
def users_create(settings: Settings, username: str, role: str, password: str) -> None:
    """Create a user who logs in to the admin pages."""
    from werkzeug.security import generate_password_hash

    _check_password_length(password)
    with domain_errors(), _open_store(settings) as store:
        record = create_user(store, username, generate_password_hash(password), role)
    click.echo(f"created user {record.username} ({record.role})")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (prompted when not given).")
@click.pass_obj
def users_set_password(settings: Settings, username: str, password: str) -> None:
    """Set USERNAME's password (e.g. a lost admin password)."""
    from werkzeug.security import generate_password_hash

    _check_password_length(password)
    with domain_errors(), _open_store(settings) as store:
        found = find_credentials(store, username)
        if found is None:
            raise click.ClickException(f"no user named {username!r}")
        set_password_hash(store, found[0].id, generate_password_hash(password))
    click.echo(f"password of {username} changed")


def _check_password_length(password: str) -> None:
    """Refuse a password shorter than the minimum the web app enforces."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.BadParameter(f"at least {MIN_PASSWORD_LENGTH} characters", param_hint="--password")


@users_group.command("list")
@click.pass_obj
def users_list(settings: Settings) -> None:
    """Print one line per user: name, role, active or disabled."""
    with domain_errors(), _open_store(settings) as store:
        for record in list_users(store):
            click.echo(f"{record.username}\t{record.role}\t{'active' if record.active else 'disabled'}")


@users_group.command("create-key")
@click.argument("username")
@click.option("--name", default="api", show_default=True, help="What the key is for.")
@click.pass_obj
def users_create_key(settings: Settings, username: str, name: str) -> None:
    """Create an API key for USERNAME and print it (once; only its hash is stored)."""
    with domain_errors(), _open_store(settings) as store:
        found = find_credentials(store, username)
        if found is None:
            raise click.ClickException(f"no user named {username!r}")
        record, secret = create_api_key(store, found[0].id, name)
    click.echo(f"API key {record.name} for {record.username} (shown once):", err=True)
    click.echo(secret)


def _open_store(settings: Settings) -> Store:
    """Migrate and open the store (the user commands need no index)."""
    upgrade_database(settings)
    return Store(settings)
