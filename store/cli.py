"""``sigverify db``, ``index`` and ``customers`` commands, and what every store-backed command shares.

Every command that opens the store first applies pending migrations and then checks the FAISS index
against SQL (repairing or rebuilding it), so a damaged index never blocks work. Domain errors are
printed as ``error: CODE: message`` on stderr with exit status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict

import click
from sqlalchemy.exc import DBAPIError

from siamese.errors import SigverifyError
from store.consistency import IndexReport, rebuild_index, sql_summary, sync_index
from store.customers import (
    delete_customer,
    describe_customer,
    get_customer,
    list_customers,
    set_customer_threshold,
)
from store.database import Store, database_unavailable
from store.migrate import upgrade_database
from store.settings import Settings

ERROR_EXIT = 2


@contextmanager
def domain_errors() -> Iterator[None]:
    """Turn a SigverifyError (or a lost database) into ``error: CODE: message`` on stderr and exit 2."""
    try:
        yield
    except SigverifyError as error:
        click.echo(f"error: {error.code}: {error.message}", err=True)
        sys.exit(ERROR_EXIT)
    except DBAPIError as error:
        unavailable = database_unavailable(error)
        if unavailable is None:
            raise
        click.echo(f"error: {unavailable.code}: {unavailable.message} ({unavailable.detail})", err=True)
        sys.exit(ERROR_EXIT)


def current_model_version(settings: Settings) -> str | None:
    """The configured model's version (``siamese.model.version_of``), without loading TensorFlow."""
    from siamese.model import SHIPPED_MODEL, version_of

    path = settings.model_path if settings.model_path is not None else SHIPPED_MODEL
    return version_of(path) if path.is_file() else None


def open_checked_store(settings: Settings, model_version: str | None = None) -> Store:
    """Migrate, open the store and sync its index with SQL; says so when it had to repair it."""
    upgrade_database(settings)
    store = Store(settings)
    try:
        report = sync_index(store, model_version or current_model_version(settings))
    except BaseException:
        store.close()
        raise
    if report.action in ("repaired", "rebuilt"):
        click.echo(report.describe(), err=True)
    return store


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply the migrations to the configured database."""
    with domain_errors():
        upgrade_database(settings, revision)
    click.echo(f"database at {revision}: {_redacted(settings.database_url)}")


@db_group.command("copy")
@click.argument("target_url")
@click.pass_obj
def db_copy(settings: Settings, target_url: str) -> None:
    """Copy every row of the configured database into TARGET_URL (migrated here; must be empty)."""
    from store.transfer import copy_database

    with domain_errors():
        copied = copy_database(settings, target_url)
    for table, rows in copied.items():
        click.echo(f"{table}: {rows} rows")
    click.echo(f"copied into {_redacted(target_url)}")


@click.group("index")
def index_group() -> None:
    """The FAISS index of reference embeddings (a cache of SQL)."""


@index_group.command("check")
@click.pass_obj
def index_check(settings: Settings) -> None:
    """Compare the index file with SQL; repair or rebuild it when they differ."""
    with domain_errors():
        upgrade_database(settings)
        with Store(settings) as store:
            report = sync_index(store, current_model_version(settings))
        click.echo(report.describe())


@index_group.command("rebuild")
@click.pass_obj
def index_rebuild(settings: Settings) -> None:
    """Rebuild the index from SQL from scratch."""
    with domain_errors():
        upgrade_database(settings)
        with Store(settings) as store:
            version = current_model_version(settings) or "none"
            report: IndexReport = rebuild_index(store, version)
        click.echo(report.describe())


@click.group("customers")
def customers_group() -> None:
    """List, show and delete enrolled customers."""


@customers_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def customers_list(settings: Settings, as_json: bool) -> None:
    """Print one line per customer: ID, references, status, threshold, name."""
    with domain_errors():
        with open_checked_store(settings) as store:
            summaries = list_customers(store)
        for summary in summaries:
            if as_json:
                click.echo(json.dumps(asdict(summary)))
            else:
                threshold = "-" if summary.threshold is None else f"{summary.threshold:.3f}"
                click.echo(f"{summary.customer_id}\t{summary.reference_count}\t{summary.status}\t"
                           f"{threshold}\t{summary.display_name or ''}")


@customers_group.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def customers_show(settings: Settings, customer_id: str, as_json: bool) -> None:
    """Show one customer and their references (exit status 2 if unknown)."""
    with domain_errors(), open_checked_store(settings) as store:
        detail = describe_customer(store, customer_id)
    data = asdict(detail)
    if as_json:
        click.echo(json.dumps(data, indent=1))
        return
    for key in ("customer_id", "display_name", "status", "threshold", "created_at", "verifications"):
        click.echo(f"{key}: {data[key]}")
    for reference in detail.references:
        click.echo(f"reference {reference.id}: sha256 {reference.sha256[:16]} "
                   f"model {reference.model_version[:12]} {reference.created_at}")


@customers_group.command("delete")
@click.argument("customer_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def customers_delete(settings: Settings, customer_id: str, yes: bool) -> None:
    """Delete a customer, their reference images, embeddings and index entries (audit rows stay)."""
    with domain_errors(), open_checked_store(settings) as store:
        with store.sessions() as session:
            get_customer(session, customer_id)
        if not yes:
            click.confirm(f"Delete customer {customer_id} and their references?", abort=True)
        removed = delete_customer(store, customer_id)
        version = store.index.model_version if store.index else None
        remaining = sql_summary(store, version).count if version else 0
    click.echo(f"deleted {customer_id} ({removed} references; {remaining} remain indexed)")


def _redacted(url: str) -> str:
    """The database URL without a password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)



@customers_group.command("threshold")
@click.argument("customer_id")
@click.argument("threshold", type=click.FloatRange(0.0, 1.0), required=False)
@click.option("--clear", is_flag=True, help="Use the global threshold again.")
@click.pass_obj
def customers_threshold(settings: Settings, customer_id: str, threshold: float | None, clear: bool) -> None:
    """Set the customer's own decision threshold (or --clear it)."""
    if (threshold is None) == (not clear):
        raise click.UsageError("give a THRESHOLD or --clear (not both)")
    with domain_errors(), open_checked_store(settings) as store:
        set_customer_threshold(store, customer_id, None if clear else threshold)
    click.echo(f"{customer_id}: threshold {'cleared' if clear else threshold}")
