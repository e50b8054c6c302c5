"""``sigverify enroll`` and ``sigverify import``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from enroll.bulk import import_dataset
from enroll.service import enroll_signatures
from store.cli import domain_errors, open_checked_store
from store.errors import EnrollmentRejectedError
from store.settings import Settings
from verify.runtime import load_signature_model

LAYOUTS = ("cedar", "bhsig", "sigcomp", "manifest")


@click.command("enroll")
@click.argument("customer_id")
@click.argument("images", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", "display_name", default=None, help="Display name of a new customer.")
@click.option("--force", is_flag=True, help="Enroll even when a blocking warning fires.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def enroll_command(settings: Settings, customer_id: str, images: tuple[Path, ...],
                   display_name: str | None, force: bool, as_json: bool) -> None:
    """Enroll IMAGE... as reference signatures of CUSTOMER_ID (all or none)."""
    with domain_errors():
        model = load_signature_model(settings)
        with open_checked_store(settings, model.version) as store:
            try:
                result = enroll_signatures(store, model, customer_id, list(images),
                                           display_name=display_name, force=force)
            except EnrollmentRejectedError as error:
                for details in error.warnings:
                    click.echo(f"warning: {details['code']}: {details['message']}", err=True)
                raise
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=1))
        return
    for warning in result.warnings:
        click.echo(f"warning: {warning.code}: {warning.message}", err=True)
    verb = "created" if result.created else "added to"
    click.echo(f"{verb} {customer_id}: references {', '.join(map(str, result.reference_ids))}")


@click.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--layout", type=click.Choice(LAYOUTS), default=None,
              help="Dataset layout (default: detect).")
@click.option("--references", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Genuine signatures enrolled per writer (the first K by file name).")
@click.option("--prefix", default="", help="Prefix of the customer IDs (dataset-writer).")
@click.option("--force", is_flag=True, help="Enroll writers even when a blocking warning fires.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def import_command(settings: Settings, directory: Path, layout: str | None, references: int,
                   prefix: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Enroll the first K genuine signatures of every writer in DIRECTORY (idempotent, resumable)."""
    with domain_errors():
        model = load_signature_model(settings)
        with open_checked_store(settings, model.version) as store:
            report = import_dataset(store, model, directory, layout, references, prefix=prefix,
                                    force=force, progress=not quiet)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1))
        return
    data = report.to_dict()
    click.echo(f"{report.writers} writers: {report.enrolled} enrolled, {report.skipped} already there, "
               f"{len(report.failed)} failed, {len(report.warnings)} warnings; {report.signatures} "
               f"signatures in {data['seconds']} s ({data['signatures_per_second']}/s)")
    for customer_id, code, message in report.failed:
        click.echo(f"failed {customer_id}: {code}: {message}", err=True)
    for customer_id, warning in report.warnings:
        click.echo(f"warning {customer_id}: {warning.code}: {warning.message}", err=True)
