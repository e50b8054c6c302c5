"""The ``sigverify`` command line: one click group that every package's commands join."""

from __future__ import annotations

from pathlib import Path

import click

from enroll.cli import enroll_command, import_command
from siamese.cli import (
    calibrate_command,
    evaluate_command,
    export_litert_command,
    fit_head_command,
    model_card_command,
    train_command,
)
from siamese.litert import RUNTIMES
from siamese.tensorflow_startup import hide_tensorflow_startup_lines
from store.cli import customers_group, db_group, index_group
from store.settings import Settings
from verify.cli import compare_command, identify_command, reindex_command, verify_command
from webapp.commands import serve_command, users_group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (SQLite file, index files). Env: SIGVERIFY_DATA_DIR; default ./var.",
)
@click.option(
    "--database-url",
    default=None,
    help="SQLAlchemy URL. Env: SIGVERIFY_DATABASE_URL; default SQLite in the data dir.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model file (.keras). Env: SIGVERIFY_MODEL_PATH; default the shipped model.",
)
@click.option(
    "--model-runtime",
    type=click.Choice(RUNTIMES),
    default=None,
    help="What embeds: LiteRT through the flatbuffer beside the model file when it matches it "
    "(default), or TensorFlow. Env: SIGVERIFY_MODEL_RUNTIME.",
)
@click.option(
    "--tensorflow-log",
    is_flag=True,
    default=None,
    help="Keep TensorFlow's start-up INFO lines (oneDNN, CPU instructions) on stderr; hidden by "
    "default. Env: SIGVERIFY_TENSORFLOW_LOG=1.",
)
@click.pass_context
def main(
    ctx: click.Context,
    data_dir: Path | None,
    database_url: str | None,
    model_path: Path | None,
    model_runtime: str | None,
    tensorflow_log: bool | None,
) -> None:
    """sigverify: offline handwritten signature verification with an enrollment database."""
    ctx.obj = Settings.from_env(
        data_dir=data_dir, database_url=database_url, model_path=model_path, model_runtime=model_runtime,
        tensorflow_log=tensorflow_log or None,
    )
    if not ctx.obj.tensorflow_log:
        ctx.call_on_close(hide_tensorflow_startup_lines())


main.add_command(train_command)
main.add_command(evaluate_command)
main.add_command(calibrate_command)
main.add_command(fit_head_command)
main.add_command(model_card_command)
main.add_command(export_litert_command)

main.add_command(db_group)
main.add_command(index_group)
main.add_command(customers_group)
main.add_command(enroll_command)
main.add_command(import_command)
main.add_command(compare_command)
main.add_command(verify_command)
main.add_command(identify_command)
main.add_command(reindex_command)
main.add_command(serve_command)
main.add_command(users_group)


if __name__ == "__main__":
    main()
