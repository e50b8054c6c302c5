"""``sigverify compare``, ``verify``, ``identify`` and ``reindex``."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from store.cli import domain_errors, open_checked_store
from store.settings import Settings
from verify.reindex import reindex_references
from verify.runtime import decision_threshold, load_signature_model
from verify.service import compare_signatures, identify_signature, verify_signature

IMAGE = click.Path(dir_okay=False, path_type=Path)
NO_MATCH_EXIT = 1


@click.command("compare")
@click.argument("image_a", type=IMAGE)
@click.argument("image_b", type=IMAGE)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def compare_command(settings: Settings, image_a: Path, image_b: Path, as_json: bool) -> None:
    """Score two images against each other; nothing is stored (exit 0 match, 1 no match, 2 error)."""
    with domain_errors():
        model = load_signature_model(settings)
        result = compare_signatures(model, image_a, image_b, decision_threshold(settings, model),
                                    settings.max_upload_bytes, settings.max_image_pixels)
    if as_json:
        click.echo(json.dumps(asdict(result)))
    else:
        click.echo(f"{'match' if result.match else 'no match'}: score {result.score:.4f} "
                   f"(threshold {result.threshold:.4f})")
    sys.exit(0 if result.match else NO_MATCH_EXIT)


@click.command("verify")
@click.argument("customer_id")
@click.argument("image", type=IMAGE)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--actor", default="cli", show_default=True, help="Who asks (written to the audit).")
@click.pass_obj
def verify_command(settings: Settings, customer_id: str, image: Path, as_json: bool, actor: str) -> None:
    """Verify IMAGE against CUSTOMER_ID's references (exit 0 match, 1 no match, 2 error)."""
    with domain_errors():
        model = load_signature_model(settings)
        with open_checked_store(settings, model.version) as store:
            result = verify_signature(store, model, customer_id, image, actor=actor, channel="cli")
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"{'match' if result.match else 'no match'}: {customer_id} score {result.score:.4f} "
                   f"(threshold {result.threshold:.4f}, best reference {result.best_reference_id}, "
                   f"{len(result.reference_scores)} references)")
    sys.exit(0 if result.match else NO_MATCH_EXIT)


@click.command("identify")
@click.argument("image", type=IMAGE)
@click.option("--top", "top", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Number of customers to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@click.pass_obj
def identify_command(settings: Settings, image: Path, top: int, as_json: bool) -> None:
    """List the enrolled customers whose signatures best match IMAGE (1:N)."""
    with domain_errors():
        model = load_signature_model(settings)
        with open_checked_store(settings, model.version) as store:
            candidates = identify_signature(store, model, image, top)
    if as_json:
        click.echo(json.dumps([asdict(candidate) for candidate in candidates]))
        return
    for rank, candidate in enumerate(candidates, start=1):
        click.echo(f"{rank}. {candidate.customer_id}\t{candidate.score:.4f}\t"
                   f"{'match' if candidate.match else 'no match'}\treference {candidate.best_reference_id}")
    if not candidates:
        click.echo("no enrolled references")


@click.command("reindex")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_obj
def reindex_command(settings: Settings, quiet: bool) -> None:
    """Re-embed every stored reference image with the current model, then rebuild the index."""
    with domain_errors():
        model = load_signature_model(settings)
        with open_checked_store(settings, model.version) as store:
            count, report = reindex_references(store, model, progress=not quiet)
    click.echo(f"re-embedded {count} references; {report.describe()}")
