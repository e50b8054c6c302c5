"""End-to-end: train a tiny model on synthetic signatures, evaluate, calibrate, resume."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from siamese.evaluation import Trials, build_trials, summarize
from siamese.model import SignatureModel, card_path_for
from siamese.network import TINY_NETWORK
from siamese.preprocess import CANVAS_HEIGHT, CANVAS_WIDTH
from siamese.training import (
    BatchSampler,
    TrainConfig,
    Trainer,
    load_training_data,
    validate,
    writer_probabilities,
)
from tests.synthetic import write_cedar_layout
from webapp.cli import main

TINY = ["--tiny", "--steps-per-epoch", "8", "--writers-per-batch", "6", "--quiet", "--seed", "3"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Twelve synthetic writers in the CEDAR layout."""
    return write_cedar_layout(tmp_path_factory.mktemp("cedar"), writers=12, genuine=8, forgeries=4)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    """A tiny model trained for two epochs."""
    out = tmp_path_factory.mktemp("model") / "tiny.keras"
    cache = tmp_path_factory.mktemp("cache")
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out), "--epochs", "2",
                                       "--cache-dir", str(cache), *TINY])
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_model_and_card(trained, dataset):
    card = json.loads(card_path_for(trained).read_text())
    assert card["epochs_run"] == 2
    assert set(card["split"]) == {"train", "validation", "test"}
    train, validation, test = (set(card["split"][k]) for k in ("train", "validation", "test"))
    assert train and validation and test
    assert not (train & validation or train & test or validation & test)
    assert card["hyperparameters"]["steps_per_epoch"] == 8
    assert "eer_skilled" in card["test"][dataset.name]
    assert card["parameters"] > 0 and card["twin_flops_per_image"] > 0
    assert card["head_fit"]["writers"] == len(train)
    assert card["score_normalisation"] == card["head_fit"]["score_normalisation"]
    model = SignatureModel.load(trained)
    assert model.normalisation.strength == 0.5
    vectors = model.embed_preprocessed(np.zeros((2, CANVAS_HEIGHT, CANVAS_WIDTH, 1), np.float32))
    assert vectors.shape == (2, 256)


def test_evaluate_json_reports_protocol(trained, dataset, tmp_path):
    plot = tmp_path / "eval.png"
    result = CliRunner().invoke(main, ["evaluate", "--data", str(dataset), "--model", str(trained),
                                       "--json", "--plot", str(plot), "--writers", "all",
                                       "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("eer_skilled", "eer_random", "auc", "far", "frr", "threshold", "writers", "queries"):
        assert key in report
    assert report["writers"] == 12
    # 8 genuine - 5 references = 3 positives, 4 skilled, 11 random (other writers) per writer
    assert (report["genuine"], report["skilled"], report["random"]) == (36, 48, 132)
    assert plot.stat().st_size > 10_000


def test_evaluate_per_writer_adds_up_to_the_totals_worst_writer_first(trained, dataset, tmp_path):
    args = ["evaluate", "--data", str(dataset), "--model", str(trained), "--writers", "all",
            "--cache-dir", str(tmp_path / "c"), "--per-writer"]
    report = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    rows = report["per_writer"]
    assert len(rows) == 12 and {row["genuine"] for row in rows} == {3}
    rejected = sum(row["frr"] * row["genuine"] for row in rows)
    accepted = sum(row["far_skilled"] * row["skilled"] for row in rows)
    assert rejected == pytest.approx(report["frr"] * report["genuine"])
    assert accepted == pytest.approx(report["far"] * report["skilled"])
    errors = [row["frr"] + row["far_skilled"] + row["far_random"] for row in rows]
    assert errors == sorted(errors, reverse=True)
    text = CliRunner().invoke(main, args).stdout
    assert f"  {rows[0]['writer']}: FRR " in text and text.count(" FAR skilled ") == 12


def test_evaluate_defaults_to_test_writers(trained, dataset, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--data", str(dataset), "--model", str(trained),
                                       "--json", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(trained).read_text())
    assert json.loads(result.stdout)["writers"] == len(card["split"]["test"])


def test_calibrate_stores_threshold(trained, dataset, tmp_path):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    result = CliRunner().invoke(main, ["calibrate", "--data", str(dataset), "--model", str(copy),
                                       "--target-far", "0.1", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(copy).read_text())
    assert card["threshold_source"] == "calibrated"
    assert card["calibration"]["far_skilled"] <= 0.1
    assert SignatureModel.load(copy).threshold == pytest.approx(card["threshold"])
    for split in ("validation", "test"):  # both blocks rewritten at the new threshold
        assert card[split][dataset.name]["threshold"] == pytest.approx(card["threshold"])


def test_fit_head_refits_in_place_and_asks_for_calibration(trained, dataset, tmp_path):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    args = ["--data", str(dataset), "--model", str(copy), "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(main, ["fit-head", *args, "--strength", "0.25"])
    assert result.exit_code == 0, result.output
    assert "Now run: sigverify calibrate" in result.stdout
    card = json.loads(card_path_for(copy).read_text())
    assert card["score_normalisation"]["strength"] == 0.25
    assert card["threshold_source"].startswith("not calibrated")
    assert SignatureModel.load(copy).normalisation.strength == 0.25
    assert CliRunner().invoke(main, ["calibrate", *args]).exit_code == 0
    card = json.loads(card_path_for(copy).read_text())
    assert [c.split()[1] for c in card["post_training_commands"]] == ["fit-head", "calibrate"]


def test_fit_head_sets_keeps_and_clears_the_test_time_zooms(trained, dataset, tmp_path):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    args = ["fit-head", "--data", str(dataset), "--model", str(copy), "--cache-dir", str(tmp_path / "c")]
    plain_kernel = SignatureModel.load(copy).head.get_layer("similarity").get_weights()[0]
    assert CliRunner().invoke(main, [*args, "--test-time-zooms", "0.9,1.1"]).exit_code == 0
    viewed = SignatureModel.load(copy)
    assert viewed.zooms == (0.9, 1.1)
    card = json.loads(card_path_for(copy).read_text())
    assert card["test_time_zooms"] == [0.9, 1.1]
    assert "--test-time-zooms 0.9,1.1" in card["post_training_commands"][-1], "as it was typed"
    shown = CliRunner().invoke(main, ["model-card", "--model", str(copy)]).stdout
    assert "the canvas drawn 0.9 and 1.1 times as large (3 twin passes per image)" in shown
    assert not np.allclose(viewed.head.get_layer("similarity").get_weights()[0], plain_kernel), \
        "the head is fitted on the averaged embeddings"
    assert CliRunner().invoke(main, args).exit_code == 0
    assert SignatureModel.load(copy).zooms == (0.9, 1.1), "fit-head without the option keeps the card's"
    assert CliRunner().invoke(main, [*args, "--test-time-zooms", ""]).exit_code == 0
    assert SignatureModel.load(copy).zooms == ()
    assert card_path_for(copy).read_text().count("--test-time-zooms ''") == 1


@pytest.mark.parametrize("value", ["1", "0.9,x", "0.9,0.9", "3"])
def test_unusable_test_time_zooms_are_refused_before_anything_changes(trained, dataset, tmp_path, value):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    before = card_path_for(copy).read_text(), copy.read_bytes()
    result = CliRunner().invoke(main, ["fit-head", "--data", str(dataset), "--model", str(copy),
                                       "--test-time-zooms", value])
    assert result.exit_code == 2 and "--test-time-zooms" in result.output, result.output
    assert (card_path_for(copy).read_text(), copy.read_bytes()) == before


def test_calibrate_on_data_without_forgeries_needs_target_frr(trained, tmp_path):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    before = card_path_for(copy).read_text()
    bank = write_cedar_layout(tmp_path / "bank", writers=4, genuine=8, forgeries=0)
    args = ["calibrate", "--data", str(bank), "--model", str(copy), "--writers", "all",
            "--cache-dir", str(tmp_path / "c")]
    for refused in ([], ["--target-far", "0.1"]):
        result = CliRunner().invoke(main, [*args, *refused])
        assert result.exit_code == 1 and "no usable skilled forgeries" in result.output
        assert "--target-frr" in result.output and card_path_for(copy).read_text() == before
    both = CliRunner().invoke(main, [*args, "--target-far", "0.1", "--target-frr", "0.1"])
    assert both.exit_code == 2 and "not both" in both.output
    result = CliRunner().invoke(main, [*args, "--target-frr", "0.1"])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(copy).read_text())
    assert card["calibration"]["method"] == "FRR <= 0.1 (genuine signatures)"
    assert card["calibration"]["frr"] <= 0.1 and card["calibration"]["far_skilled"] is None
    assert SignatureModel.load(copy).threshold == pytest.approx(card["threshold"])


def test_calibrate_top_changes_the_rule_and_fit_head_keeps_it(trained, dataset, tmp_path):
    copy = tmp_path / "model.keras"
    copy.write_bytes(trained.read_bytes())
    card_path_for(copy).write_text(card_path_for(trained).read_text())
    assert SignatureModel.load(copy).normalisation.top == 3  # what training writes by default
    args = ["--data", str(dataset), "--model", str(copy), "--cache-dir", str(tmp_path / "c")]
    result = CliRunner().invoke(main, ["calibrate", *args, "--top", "0"])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(copy).read_text())
    assert card["score_normalisation"]["top"] == 0
    assert SignatureModel.load(copy).normalisation.top == 0
    assert card["post_training_commands"][-1].endswith("--top 0")
    assert CliRunner().invoke(main, ["fit-head", *args]).exit_code == 0  # no --top: the card's stays
    assert SignatureModel.load(copy).normalisation.top == 0
    assert CliRunner().invoke(main, ["fit-head", *args, "--top", "2"]).exit_code == 0
    assert SignatureModel.load(copy).normalisation.top == 2
    refused = CliRunner().invoke(main, ["calibrate", *args, "--top", "-1"])
    assert refused.exit_code != 0 and "--top" in refused.output


def test_fit_head_needs_the_cards_training_writers(trained, tmp_path):
    other = write_cedar_layout(tmp_path / "elsewhere", writers=3, genuine=3, forgeries=1)
    result = CliRunner().invoke(main, ["fit-head", "--data", str(other), "--model", str(trained),
                                       "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code != 0
    assert "no training writer of the model card is in this data" in result.output
    card = json.loads(card_path_for(trained).read_text())
    single = tmp_path / "single" / dataset_name(card)  # every writer, one genuine signature each
    write_cedar_layout(single, writers=12, genuine=1, forgeries=1)
    few = CliRunner().invoke(main, ["fit-head", "--data", str(single), "--model", str(trained),
                                    "--cache-dir", str(tmp_path / "c")])
    assert few.exit_code == 1 and "at least two writers" in few.output


def dataset_name(card: dict) -> str:
    """The dataset folder name of the card's first training writer."""
    return card["split"]["train"][0].split("/", 1)[0]


def test_resume_continues_from_checkpoint(dataset, tmp_path):
    """Resuming a run with the optional weight average, refit selection, balancing and strong
    augmentation (all restored)."""
    out, work = tmp_path / "m.keras", tmp_path / "work"
    args = ["train", "--data", str(dataset), "--out", str(out), "--work-dir", str(work),
            "--cache-dir", str(tmp_path / "c"), "--ema-decay", "0.998", "--select-after-head-fit",
            "--balance-datasets", "--augment", "strong", *TINY]
    first = CliRunner().invoke(main, [*args, "--epochs", "2", "--max-minutes", "0"])
    assert first.exit_code == 0, first.output
    assert json.loads(card_path_for(out).read_text())["epochs_run"] == 1
    second = CliRunner().invoke(main, [*args, "--epochs", "2", "--resume"])
    assert second.exit_code == 0, second.output
    history = json.loads((work / "history.json").read_text())["history"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    options = json.loads(card_path_for(out).read_text())["hyperparameters"]
    assert (options["ema_decay"], options["select_after_head_fit"], options["balance_datasets"],
            options["augment_profile"]) == (0.998, True, True, "strong")


def test_train_offers_every_augmentation_profile():
    from siamese.augment import PROFILES
    from siamese.cli import train_command

    choices = next(option.type.choices for option in train_command.params if option.name == "augment_profile")
    assert set(choices) == set(PROFILES)


def test_summarize_counts_and_perfect_separation():
    trials = Trials(scores=[0.9, 0.8, 0.1, 0.2, 0.05], kinds=["genuine", "genuine", "skilled", "skilled",
                                                              "random"], writers=1)
    result = summarize(trials, threshold=0.5)
    assert result["eer_skilled"] == 0.0 and result["eer_random"] == 0.0 and result["auc"] == 1.0
    assert result["far"] == 0.0 and result["frr"] == 0.0


def test_build_trials_never_uses_a_reference_as_query():
    genuine = {f"d/w{i}": list(range(10 * i, 10 * i + 7)) for i in range(4)}
    forged = {f"d/w{i}": [100 + i] for i in range(4)}
    plan = build_trials(sorted(genuine), genuine, forged, references=5, seed=1)
    for writer, refs, queries in plan:
        assert len(refs) == 5 and set(refs) <= set(genuine[writer])
        assert not set(refs) & {index for index, _ in queries}
        kinds = [kind for _, kind in queries]
        assert kinds.count("genuine") == 2 and kinds.count("skilled") == 1 and kinds.count("random") == 3


def test_model_card_prints_markdown_of_the_card(trained, tmp_path):
    result = CliRunner().invoke(main, ["model-card", "--model", str(trained)])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(trained).read_text())
    assert f"trained for {card['training_seconds'] / 60:.0f} min" in result.stdout
    assert "| dataset | writers |" in result.stdout and "Head refitted" in result.stdout
    bare = tmp_path / "bare.keras"
    bare.write_bytes(trained.read_bytes())
    missing = CliRunner().invoke(main, ["model-card", "--model", str(bare)])
    assert missing.exit_code != 0 and "no model card beside" in missing.output


def test_balanced_sampling_gives_each_dataset_an_equal_share():
    writers = ["small/a", "small/b", "big/a", "big/b", "big/c", "big/d", "big/e", "big/f"]
    balanced = writer_probabilities(writers, balance_datasets=True)
    assert balanced[:2].sum() == pytest.approx(0.5) and balanced[2:].sum() == pytest.approx(0.5)
    assert writer_probabilities(writers, balance_datasets=False) is None  # numpy's uniform draw


def test_saved_model_holds_the_weight_average_not_the_last_weights(dataset, tmp_path):
    """With averaging on, the validated weights lag the raw ones; with decay 0 they are the raw ones."""
    config = replace(TrainConfig(), epochs=1, steps_per_epoch=6, writers_per_batch=6, seed=3, ema_decay=0.998,
                     network=TINY_NETWORK)
    data = load_training_data([dataset], config, tmp_path / "c", progress=False)
    averaged = Trainer(data, config, tmp_path / "a")
    averaged.run_epoch(0, progress=False)
    raw, mean = averaged.twin.get_weights(), averaged.serving_model().twin.get_weights()
    assert any(not np.allclose(r, m) for r, m in zip(raw, mean))
    plain = Trainer(data, replace(config, ema_decay=0.0), tmp_path / "p")
    assert not hasattr(plain, "ema_twin")  # no second copy, and the random draws of the shipped recipe
    plain.run_epoch(0, progress=False)
    served = plain.serving_model().twin.get_weights()
    assert all(np.array_equal(r, s) for r, s in zip(plain.twin.get_weights(), served))


def test_epochs_are_validated_with_the_refitted_head_and_rule_that_ship(dataset, tmp_path):
    config = replace(TrainConfig(), epochs=1, steps_per_epoch=4, writers_per_batch=6, seed=3, ema_decay=0.998,
                     select_after_head_fit=True, network=TINY_NETWORK)
    data = load_training_data([dataset], config, tmp_path / "c", progress=False)
    trainer = Trainer(data, config, tmp_path / "w")
    trainer.run_epoch(0, progress=False)
    trained_head = trainer.ema_head.get_weights()
    model = trainer.serving_model()
    assert validate(model, data, config)[dataset.name]["eer_skilled"] is not None
    assert model.normalisation.strength == config.head.normalisation_strength  # the refit's rule
    refitted = model.head.get_layer("similarity").get_weights()
    assert not np.allclose(refitted[0], trained_head[0])
    assert all(np.array_equal(a, b) for a, b in zip(trainer.ema_head.get_weights(), trained_head))
    untouched = trainer.serving_model()
    validate(untouched, data, replace(config, select_after_head_fit=False))
    assert untouched.normalisation.strength == 0.0


def test_batch_composition_margin_and_stem_options_reach_the_sampler_the_network_and_the_card(
        dataset, tmp_path):
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out), "--epochs", "1",
                                       "--cache-dir", str(tmp_path / "c"), "--genuine-per-writer", "3",
                                       "--forgeries-per-writer", "4", "--classifier-margin", "0.35",
                                       "--no-stem-pool", "--test-time-zooms", "0.9,1.1",
                                       "--embedding-dim", "64", *TINY])
    assert result.exit_code == 0, result.output
    card = json.loads(card_path_for(out).read_text())
    hyperparameters = card["hyperparameters"]
    assert (hyperparameters["genuine_per_writer"], hyperparameters["forgeries_per_writer"]) == (3, 4)
    assert hyperparameters["classifier_margin"] == 0.35
    assert hyperparameters["network"]["stem_pool"] is False
    assert hyperparameters["network"]["embedding_dim"] == 64
    assert hyperparameters["test_time_zooms"] == card["test_time_zooms"] == [0.9, 1.1]
    assert SignatureModel.load(out).zooms == (0.9, 1.1)
    loaded = SignatureModel.load(out, runtime="tensorflow")
    canvas = np.zeros((1, CANVAS_HEIGHT, CANVAS_WIDTH, 1))
    assert loaded.embedding_dim == 64 and loaded.embed_preprocessed(canvas).shape == (1, 64)
    twin = loaded.twin
    layer_names = [layer.name for layer in twin.layers]
    assert "stem_conv" in layer_names and "stem_pool" not in layer_names
    # Without the pooling the first stage sees the stem's output at its own resolution (half the canvas).
    assert twin.get_layer("s0_conv0").output.shape[1:3] == (CANVAS_HEIGHT // 2, CANVAS_WIDTH // 2)
    config = replace(TrainConfig(), writers_per_batch=5, genuine_per_writer=3, forgeries_per_writer=4, seed=3)
    data = load_training_data([dataset], config, tmp_path / "c", progress=False)
    _, writer_ids, genuine = BatchSampler(data, config).sample(np.random.default_rng(0))
    assert len(set(writer_ids.tolist())) == 5
    for writer in set(writer_ids.tolist()):
        flags = genuine[writer_ids == writer]
        assert (int(flags.sum()), int((~flags).sum())) == (3, 4)


@pytest.mark.parametrize("option", [["--genuine-per-writer", "1"], ["--forgeries-per-writer", "-1"],
                                    ["--writers-per-batch", "1"], ["--classifier-margin", "-0.1"],
                                    ["--classifier-margin", "1"]])
def test_batch_composition_and_margin_options_out_of_range_are_refused(dataset, tmp_path, option):
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out), *TINY, *option])
    assert result.exit_code == 2 and "range" in result.output
    assert not out.exists()


def test_no_augment_and_an_augmentation_profile_are_refused_together(dataset, tmp_path):
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(tmp_path / "m.keras"),
                                       "--no-augment", "--augment", "strong", *TINY])
    assert result.exit_code == 2 and "exclude each other" in result.output
    assert not (tmp_path / "m.keras").exists()


def test_split_seed_keeps_the_writer_split_while_the_seed_changes(dataset, tmp_path):
    """``--seed 7 --split-seed 3``: a new initialisation and sampling on the same writers as ``--seed 3``."""
    base = replace(TrainConfig(), seed=3, split_fractions=(0.5, 0.25, 0.25))
    split = load_training_data([dataset], base, tmp_path / "c", progress=False).split
    same = load_training_data([dataset], replace(base, seed=7, split_seed=3), tmp_path / "c", progress=False)
    other = load_training_data([dataset], replace(base, seed=7), tmp_path / "c", progress=False)
    assert same.split == split
    assert other.split != split


def test_cross_validation_folds_rotate_the_train_and_validation_writers_and_keep_test(dataset, tmp_path):
    base = replace(TrainConfig(), seed=3)
    plain = load_training_data([dataset], base, tmp_path / "c", progress=False).split
    folds = [load_training_data([dataset], replace(base, folds=3, fold=k), tmp_path / "c",
                                progress=False).split for k in (1, 2, 3)]
    pool = set(plain["train"]) | set(plain["validation"])
    assert all(split["test"] == plain["test"] for split in folds)
    assert all(set(split["train"]) | set(split["validation"]) == pool for split in folds)
    assert all(not set(split["train"]) & set(split["validation"]) for split in folds)
    validations = [set(split["validation"]) for split in folds]
    assert set().union(*validations) == pool and sum(map(len, validations)) == len(pool)
    assert max(map(len, validations)) - min(map(len, validations)) <= 1


@pytest.mark.parametrize("options", [["--folds", "3"], ["--fold", "2"], ["--folds", "3", "--fold", "4"]])
def test_fold_options_need_each_other_and_a_fold_in_range(dataset, tmp_path, options):
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out), *options, *TINY])
    assert result.exit_code == 2 and "--folds N and --fold K" in result.output
    assert not out.exists()


def test_keep_last_ships_the_last_epoch_not_the_best_and_says_so(dataset, tmp_path, monkeypatch):
    import siamese.training

    validate = siamese.training.validate
    scores = iter([0.1, 0.4])  # epoch 1 validates best

    def first_epoch_best(model, data, config):
        results = validate(model, data, config)
        skilled = next(scores)
        return {name: {**result, "eer_skilled": skilled} for name, result in results.items()}

    monkeypatch.setattr(siamese.training, "validate", first_epoch_best)
    out, work = tmp_path / "m.keras", tmp_path / "work"
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out),
                                       "--work-dir", str(work), "--cache-dir", str(tmp_path / "c"),
                                       "--epochs", "2", "--keep", "last",
                                       "--folds", "3", "--fold", "2", *TINY])
    assert result.exit_code == 0, result.output
    assert "last epoch 2 of 2" in result.output
    shipped, last = SignatureModel.load(out), SignatureModel.load(work / "last.keras")
    best = SignatureModel.load(work / "best.keras")
    assert all(np.array_equal(a, b) for a, b in zip(shipped.twin.get_weights(), last.twin.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(shipped.twin.get_weights(), best.twin.get_weights()))
    card = json.loads(card_path_for(out).read_text())
    assert (card["best_epoch"], card["kept_epoch"], card["hyperparameters"]["keep"]) == (1, 2, "last")
    printed = CliRunner().invoke(main, ["model-card", "--model", str(out)])
    assert "the last epoch, 2, kept" in printed.output and "cross-validation fold 2 of 3" in printed.output


def test_more_folds_than_writers_is_a_clear_error(dataset, tmp_path):
    out = tmp_path / "m.keras"
    result = CliRunner().invoke(main, ["train", "--data", str(dataset), "--out", str(out),
                                       "--cache-dir", str(tmp_path / "c"), "--folds", "20", "--fold", "1",
                                       *TINY])
    assert result.exit_code == 1 and "cannot make 20 folds" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_resuming_a_finished_run_without_its_last_epoch_file_rebuilds_it(dataset, tmp_path):
    """A work dir from before runs kept ``last.keras``: resuming the finished run recreates it."""
    out, work = tmp_path / "m.keras", tmp_path / "work"
    args = ["train", "--data", str(dataset), "--out", str(out), "--work-dir", str(work),
            "--cache-dir", str(tmp_path / "c"), "--epochs", "1", *TINY]
    assert CliRunner().invoke(main, args).exit_code == 0
    trained = SignatureModel.load(work / "last.keras").twin.get_weights()
    (work / "last.keras").unlink()
    again = CliRunner().invoke(main, [*args, "--resume", "--keep", "last"])
    assert again.exit_code == 0, again.output
    rebuilt = SignatureModel.load(work / "last.keras").twin.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(trained, rebuilt))
    assert all(np.array_equal(a, b) for a, b in zip(trained, SignatureModel.load(out).twin.get_weights()))
