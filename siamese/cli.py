"""``sigverify train``, ``evaluate`` and ``calibrate``: the model's command-line tooling."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from siamese.datasets import LAYOUTS

DATA_OPTION = click.option(
    "--data", "data_dirs", multiple=True, required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset folder (repeatable). Its layout is detected unless --layout is given.",
)
LAYOUT_OPTION = click.option("--layout", type=click.Choice(LAYOUTS), default=None,
                             help="Dataset layout of every --data folder (default: detect).")
CACHE_OPTION = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                            default=Path("var/cache"), show_default=True,
                            help="Where preprocessed canvases are cached.")


def _zooms(_context: click.Context, _parameter: click.Parameter,
           value: str | None) -> tuple[float, ...] | None:
    """``--test-time-zooms``: comma-separated zooms, "" for none (``siamese.views``)."""
    from siamese.errors import ModelError
    from siamese.views import checked_zooms

    if value is None:
        return None
    try:
        return checked_zooms([float(part) for part in value.split(",") if part.strip()])
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    except ModelError as error:
        raise click.BadParameter(error.message) from None


ZOOMS_OPTION = click.option(
    "--test-time-zooms", "zooms", callback=_zooms, default=None, metavar="Z1,Z2",
    help="Embed each canvas also drawn these many times as large and average the vectors, e.g. "
         "0.9,1.1 (\"\" for the canvas alone). A new embedding rule: a new model version.")

UPDATED_MODEL_OPTION = click.option(
    "--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Model file updated in place, with its card (default: the shipped model).")


@click.command("train")
@DATA_OPTION
@LAYOUT_OPTION
@CACHE_OPTION
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output .keras file; the model card (.json) is written beside it.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Checkpoints and history (default: a hidden folder beside --out).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --work-dir.")
@click.option("--epochs", type=int, default=None, help="Number of epochs.")
@click.option("--steps-per-epoch", type=int, default=None, help="Batches per epoch.")
@click.option("--writers-per-batch", type=click.IntRange(2), default=None, help="Writers per batch.")
@click.option("--genuine-per-writer", type=click.IntRange(2), default=None,
              help="Genuine signatures of each batch writer (default 4).")
@click.option("--forgeries-per-writer", type=click.IntRange(0), default=None,
              help="Skilled forgeries of each batch writer, where it has any (default 2).")
@click.option("--learning-rate", type=float, default=None, help="Peak learning rate.")
@click.option("--classifier-margin", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Additive cosine margin of the writer classifier (default 0.2).")
@click.option("--seed", type=int, default=None, help="Seed of the split, sampling and initialisation.")
@click.option("--split-seed", type=int, default=None,
              help="Seed of the writer split alone (default --seed): other seeds, same split.")
@click.option("--no-augment", is_flag=True, help="Train without augmentation.")
@click.option("--augment", "augment_profile", type=click.Choice(["standard", "strong", "finer-pens"]),
              default=None,
              help="Augmentation profile (default standard; strong adds elastic warps, a stretch "
                   "per axis, binarised ink and wider ranges; finer-pens adds narrower strokes).")
@click.option("--balance-datasets", is_flag=True,
              help="Give each dataset an equal share of batch writers (default: every writer equally).")
@click.option("--select-after-head-fit", is_flag=True,
              help="Judge each epoch with its head refitted and the service's rule (default: the head "
                   "trained alongside the twin).")
@click.option("--ema-decay", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
              help="Validate and save an average of the weights with this decay, e.g. 0.998 "
                   "(default 0: the raw weights).")
@click.option("--keep", type=click.Choice(["best", "last"]), default=None,
              help="Ship the epoch with the best validation EER (default) or the last epoch.")
@click.option("--folds", type=click.IntRange(2, 20), default=None,
              help="Cross-validation: cut the split's train + validation writers into this many folds "
                   "(test writers untouched); --fold picks the one that validates.")
@click.option("--fold", type=click.IntRange(1, 20), default=None, help="The validating fold (1..--folds).")
@click.option("--max-minutes", type=float, default=None, help="Stop after the epoch that passes this time.")
@click.option("--tiny", is_flag=True, help="A much smaller network (for tests and smoke runs).")
@click.option("--no-stem-pool", is_flag=True,
              help="Drop the stem's max pooling: every stage at twice the resolution each way.")
@click.option("--embedding-dim", type=click.IntRange(8, 1024), default=None,
              help="Length of the twin's vector (default 256; the service stores 256-d vectors, so another "
                   "length is for research, e.g. one branch of two side by side).")
@ZOOMS_OPTION
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train_command(data_dirs, layout, cache_dir, out_path, work_dir, resume, epochs, steps_per_epoch,
                  writers_per_batch, genuine_per_writer, forgeries_per_writer, learning_rate,
                  classifier_margin, seed, split_seed, no_augment, augment_profile, balance_datasets,
                  select_after_head_fit, ema_decay, keep, folds, fold, max_minutes, tiny, no_stem_pool,
                  embedding_dim, zooms, quiet) -> None:
    """Train the twin and head on writer-disjoint splits of the given datasets."""
    from dataclasses import replace

    from siamese.network import TINY_NETWORK
    from siamese.training import FoldError, TrainConfig, train

    overrides = {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "seed": seed, "split_seed": split_seed,
                 "writers_per_batch": writers_per_batch, "genuine_per_writer": genuine_per_writer,
                 "forgeries_per_writer": forgeries_per_writer, "learning_rate": learning_rate,
                 "classifier_margin": classifier_margin,
                 "ema_decay": ema_decay, "augment_profile": augment_profile,
                 "augment": False if no_augment else None,  # flags override only when given
                 "balance_datasets": balance_datasets or None,
                 "select_after_head_fit": select_after_head_fit or None,
                 "keep": keep, "folds": folds, "fold": fold, "test_time_zooms": zooms}
    if no_augment and augment_profile:
        raise click.UsageError("--no-augment and --augment exclude each other")
    if (folds is None) != (fold is None) or (folds is not None and fold > folds):
        raise click.UsageError("--folds N and --fold K (1 <= K <= N) go together")
    config = replace(TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    if tiny:
        config = replace(config, network=TINY_NETWORK)
    if no_stem_pool:
        config = replace(config, network=replace(config.network, stem_pool=False))
    if embedding_dim:
        config = replace(config, network=replace(config.network, embedding_dim=embedding_dim))
    command = "sigverify " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])
    try:
        card = train(data_dirs, out_path, config, work_dir=work_dir, resume=resume, progress=not quiet,
                     max_minutes=max_minutes, cache_dir=cache_dir, layouts=[layout] * len(data_dirs),
                     command=command)
    except FoldError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"saved {out_path} ({config.keep} epoch {card['kept_epoch']} of {card['epochs_run']}, "
               f"{card['training_seconds'] / 60:.1f} min)")
    for dataset, result in card["test"].items():
        click.echo(f"  test {dataset}: {_one_line(result)}")


def _runtime(settings) -> str:
    """The settings' model runtime (``siamese.litert``), for commands that embed."""
    from siamese.litert import DEFAULT_RUNTIME

    return getattr(settings, "model_runtime", DEFAULT_RUNTIME)


@click.command("evaluate")
@DATA_OPTION
@LAYOUT_OPTION
@CACHE_OPTION
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Model file (default: --model of sigverify, else the shipped model).")
@click.option("--references", type=click.IntRange(1, 50), default=5, show_default=True,
              help="Genuine references per writer.")
@click.option("--writers", type=click.Choice(["auto", "test", "validation", "train", "all"]),
              default="auto", show_default=True,
              help="Which writers: a split of the model card, or all; auto = test writers of the card's "
                   "split when the data was in it, else all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the reference choice.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write ROC/DET curves and score histograms to this PNG.")
@click.option("--per-writer", is_flag=True,
              help="Also list each writer's FRR and FAR at the threshold, worst first (JSON: per_writer).")
@click.pass_obj
def evaluate_command(settings, data_dirs, layout, cache_dir, model_path, references, writers, seed,
                     as_json, plot, per_writer) -> None:
    """Measure EER (skilled and random forgeries), AUC and FAR/FRR with K references per writer."""
    from siamese.model import SignatureModel

    path = model_path or getattr(settings, "model_path", None)
    model = SignatureModel.load(path, runtime=_runtime(settings))
    result, trials = _evaluate(model, data_dirs, layout, cache_dir, references, writers, seed)
    if plot is not None:
        from siamese.plots import plot_evaluation

        plot_evaluation(trials, model.threshold, plot)
    writer_rows = None
    if per_writer:
        from siamese.evaluation import per_writer as per_writer_rows

        writer_rows = per_writer_rows(trials, model.threshold)
    if as_json:
        extra = {"per_writer": writer_rows} if per_writer else {}
        click.echo(json.dumps({**result, **extra}, default=float))
        return
    click.echo(f"model {model.version[:12]}  threshold {model.threshold:.4f}  writers {result['writers']}"
               f" ({result['writer_selection']})  K={references}")
    click.echo(_one_line(result))
    click.echo(f"queries {result['queries']}: genuine {result['genuine']}, skilled {result['skilled']}, "
               f"random {result['random']}")
    for row in writer_rows or []:
        rates = "  ".join(f"{name} {'n/a' if row[key] is None else f'{100 * row[key]:.1f}%'}"
                          for name, key in (("FRR", "frr"), ("FAR skilled", "far_skilled"),
                                            ("FAR random", "far_random")))
        click.echo(f"  {row['writer']}: {rates}  ({row['genuine']} genuine, {row['skilled']} skilled)")


def _evaluate(model, data_dirs, layout, cache_dir, references, writers, seed):
    """Load data, pick writers, score the protocol; returns (summary dict, trials)."""
    from siamese.canvas_cache import load_canvases
    from siamese.datasets import load_dataset
    from siamese.evaluation import build_trials, embed_canvases, index_records, score_trials, summarize

    records = [r for d in data_dirs for r in load_dataset(d, layout)]
    chosen, selection = _choose_writers(model.card.get("split", {}), sorted({r.writer for r in records}),
                                        writers)
    wanted = set(chosen)
    records = [r for r in records if r.writer in wanted]
    canvases, usable = load_canvases([r.path for r in records], cache_dir)
    embeddings = embed_canvases(model, canvases, usable)
    genuine, forged = index_records(records, usable)
    plan = build_trials(chosen, genuine, forged, references, seed)
    if not plan:
        raise click.ClickException(f"no writer has more than {references} usable genuine signatures")
    trials = score_trials(model, embeddings, plan)
    result = summarize(trials, model.threshold)
    result.update(writer_selection=selection, references=references, model_version=model.version,
                  unusable_images=int((~usable).sum()))
    return result, trials


def _split_results(model, data_dirs, layout, cache_dir, references, split: str) -> dict[str, Any]:
    """Per dataset folder: the protocol on the card's ``split`` writers at the model's threshold."""
    results = {}
    for data_dir in data_dirs:
        try:
            result, _ = _evaluate(model, [data_dir], layout, cache_dir, references, split, seed=0)
        except click.ClickException:
            continue  # no writer of that split of the card in this folder
        results[Path(data_dir).name] = result
    return results


def _choose_writers(split: dict[str, list[str]], all_writers: list[str], writers: str):
    """The writers to evaluate and a label saying how they were chosen."""
    if writers == "all":
        return all_writers, "all"
    if writers == "auto":
        in_split = set().union(*split.values()) if split else set()
        if not in_split.intersection(all_writers):
            return all_writers, "all (the model never saw these writers)"
        writers = "test"
    if not split:
        raise click.ClickException(f"the model card has no split; use --writers all instead of {writers}")
    chosen = sorted(set(split.get(writers, [])).intersection(all_writers))
    if not chosen:
        raise click.ClickException(f"no {writers} writer of the model card is in this data")
    return chosen, f"{writers} split"


def _record_command(card: dict[str, Any], name: str) -> None:
    """Note this command line in the card's post-training steps, replacing an earlier run of ``name``."""
    context = click.get_current_context()
    words = ["sigverify", name]
    for param in context.command.params:
        value = context.params.get(param.name or "")
        if value is None or value is False or value == param.default or not param.opts:
            continue
        for item in value if getattr(param, "multiple", False) else [value]:
            if item is True:
                words.append(param.opts[0])
            elif isinstance(item, tuple):  # a list in one value (--test-time-zooms 0.9,1.1; '' for none)
                words += [param.opts[0], ",".join(f"{part:g}" for part in item)]
            else:
                words += [param.opts[0], str(item)]
    steps = [c for c in card.get("post_training_commands", []) if c.split()[:2] != ["sigverify", name]]
    card["post_training_commands"] = steps + [" ".join(shlex.quote(word) for word in words)]


def _percent(value: float | None) -> str:
    """A rate as a percentage, or n/a when there was nothing to measure it on."""
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _one_line(result: dict[str, Any]) -> str:
    """EERs, AUC and FAR/FRR of a summary on one line."""
    pct = _percent
    auc = "n/a" if result.get("auc") is None else f"{result['auc']:.4f}"
    return (f"EER skilled {pct(result.get('eer_skilled'))}  EER random {pct(result.get('eer_random'))}  "
            f"AUC {auc}  FAR {pct(result.get('far'))}  FRR {pct(result.get('frr'))}")


TOP_OPTION = click.option(
    "--top", type=click.IntRange(0, 50), default=None,
    help="Decision score: average the query's logits against its TOP best-matching references "
         "(0 = all of them; default: the model card's).")


@click.command("fit-head")
@DATA_OPTION
@LAYOUT_OPTION
@CACHE_OPTION
@UPDATED_MODEL_OPTION
@click.option("--strength", type=click.FloatRange(0.0, 2.0), default=None,
              help="Per-customer score normalisation strength (0 = off; default 0.5).")
@TOP_OPTION
@ZOOMS_OPTION
@click.pass_obj
def fit_head_command(settings, data_dirs, layout, cache_dir, model_path, strength, top, zooms) -> None:
    """Refit the L1 head on the card's training writers and set the score normalisation.

    `sigverify train` does this at its end; run it on a model trained before, then `calibrate`.
    With --test-time-zooms the head is fitted on (and the model from then on embeds with) those views.
    """
    from dataclasses import replace

    from siamese.head_fit import HeadFitConfig
    from siamese.model import SHIPPED_MODEL, SignatureModel, card_path_for
    from siamese.training import load_training_writers, refit_head

    path = Path(model_path or getattr(settings, "model_path", None) or SHIPPED_MODEL)
    card = SignatureModel.load(path, runtime="tensorflow").card  # the card only
    train_writers = card.get("split", {}).get("train", [])
    if not train_writers:
        raise click.ClickException("the model card has no training writers to fit the head on")
    data = load_training_writers(data_dirs, train_writers, cache_dir, layout)
    writers = data.split["train"]
    if not writers:
        raise click.ClickException("no training writer of the model card is in this data")
    config = HeadFitConfig()
    if strength is not None:
        config = replace(config, normalisation_strength=strength)
    card_top = (card.get("score_normalisation") or {}).get("top")
    if top is None and card_top is not None:
        top = int(card_top)  # keep the card's rule; a card without one gets HeadFitConfig's (3)
    if top is not None:
        config = replace(config, top_references=top)
    try:
        section = refit_head(path, data, config, zooms)
    except ValueError as error:  # too few usable training writers in this data
        raise click.ClickException(str(error)) from None
    card.update(head_fit=section, score_normalisation=section["score_normalisation"],
                threshold_source="not calibrated since the head was refitted")
    if zooms is not None:
        card["test_time_zooms"] = list(zooms)
    _record_command(card, "fit-head")
    card_path_for(path).write_text(json.dumps(card, indent=1, default=float))
    click.echo(f"head refitted on {len(writers)} training writers ({section['pairs']} pairs, "
               f"training accuracy {100 * section['training_accuracy']:.1f}%); "
               f"normalisation {section['score_normalisation']}. Now run: sigverify calibrate")


@click.command("export-litert")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Model file (default: the shipped model).")
@click.pass_obj
def export_litert_command(settings, model_path) -> None:
    """Write the model's twin as a LiteRT flatbuffer beside it (MODEL.tflite).

    The service then embeds through it (faster at batch 1, the same vectors) while it matches the
    model; run it again after training into, or copying over, the model file.
    """
    from siamese.litert import export_twin, litert_path_for
    from siamese.model import SHIPPED_MODEL, SignatureModel

    path = Path(model_path or getattr(settings, "model_path", None) or SHIPPED_MODEL)
    model = SignatureModel.load(path, runtime="tensorflow")
    target = litert_path_for(path)
    size = export_twin(model.twin, target)
    if not model.use_litert(target):  # the warning above says why
        target.unlink(missing_ok=True)
        raise click.ClickException(f"LiteRT cannot embed with the flatbuffer of {path}: nothing written")
    click.echo(f"wrote {target} ({size / 1e6:.1f} MB); LiteRT gives the model's vectors")


@click.command("model-card")
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Model file (default: the shipped model).")
@click.pass_obj
def model_card_command(settings, model_path) -> None:
    """Print a model's card (data, split, commands, cost, test results) as Markdown."""
    from siamese.card import render_card_markdown
    from siamese.model import SHIPPED_MODEL, card_path_for

    path = Path(model_path or getattr(settings, "model_path", None) or SHIPPED_MODEL)
    card_file = card_path_for(path)
    if not card_file.is_file():
        raise click.ClickException(f"no model card beside {path} (expected {card_file})")
    click.echo(render_card_markdown(json.loads(card_file.read_text())), nl=False)


@click.command("calibrate")
@DATA_OPTION
@LAYOUT_OPTION
@CACHE_OPTION
@UPDATED_MODEL_OPTION
@click.option("--target-far", type=click.FloatRange(0.0, 1.0), default=None,
              help="Pick the threshold with FAR (skilled) at most this; default: the EER point.")
@click.option("--target-frr", type=click.FloatRange(0.0, 1.0), default=None,
              help="Pick the highest threshold with FRR at most this: needs genuine signatures only "
                   "(for data without forgeries).")
@click.option("--references", type=click.IntRange(1, 50), default=5, show_default=True)
@click.option("--writers", type=click.Choice(["validation", "all"]), default="validation",
              show_default=True, help="Calibrate on the card's validation writers, or on all.")
@TOP_OPTION
@click.pass_obj
def calibrate_command(settings, data_dirs, layout, cache_dir, model_path, target_far, target_frr,
                      references, writers, top) -> None:
    """Choose the decision threshold on validation writers and store it in the model card.

    By default at the skilled-forgery EER point; --target-far caps the forgeries accepted, and
    --target-frr the genuine signatures rejected (the one choice that data without forgeries allows).
    With --top, the decision rule changes first (how many best-matching references are averaged),
    and the threshold is chosen for the new rule.
    """
    from dataclasses import replace

    from siamese.metrics import equal_error_rate, far_frr, threshold_at_far, threshold_at_frr
    from siamese.model import SHIPPED_MODEL, SignatureModel, card_path_for

    if target_far is not None and target_frr is not None:
        raise click.UsageError("give --target-far or --target-frr, not both")
    path = Path(model_path or getattr(settings, "model_path", None) or SHIPPED_MODEL)
    model = SignatureModel.load(path, runtime=_runtime(settings))
    if top is not None:
        model.normalisation = replace(model.normalisation, top=top)
    result, trials = _evaluate(model, data_dirs, layout, cache_dir, references, writers, seed=0)
    labels, scores = trials.select("skilled")
    if target_frr is not None:
        threshold = threshold_at_frr(labels, scores, target_frr)
        method = f"FRR <= {target_frr} (genuine signatures)"
    elif not (labels == 0).any():
        raise click.ClickException(
            f"the {result['writers']} writers chosen have no usable skilled forgeries, so neither the EER "
            "point nor --target-far can be found: choose the threshold with --target-frr")
    elif target_far is None:
        _eer, threshold = equal_error_rate(labels, scores)
        method = "equal error rate (skilled forgeries)"
    else:
        threshold = threshold_at_far(labels, scores, target_far)
        method = f"FAR <= {target_far} (skilled forgeries)"
    far, frr = far_frr(labels, scores, threshold)
    random_labels, random_scores = trials.select("random")
    far_random, _ = far_frr(random_labels, random_scores, threshold)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text()) if card_file.is_file() else {}
    card["threshold"] = float(threshold)
    card["threshold_source"] = "calibrated"
    card["score_normalisation"] = model.normalisation.to_dict()
    card["calibration"] = {"method": method, "writers": result["writer_selection"],
                           "writer_count": result["writers"], "references": references,
                           "far_skilled": far, "frr": frr, "far_random": far_random,
                           "data": [str(d) for d in data_dirs]}
    model.threshold = float(threshold)
    for split in ("validation", "test"):  # with the model's current head, normalisation and threshold
        if card.get("split", {}).get(split):
            card[split] = _split_results(model, data_dirs, layout, cache_dir, references, split)
    _record_command(card, "calibrate")
    card_file.write_text(json.dumps(card, indent=1, default=float))
    click.echo(f"threshold {threshold:.4f} ({method}) on {result['writers']} writers: "
               f"FAR skilled {_percent(far)}  FAR random {_percent(far_random)}  FRR {_percent(frr)}")
