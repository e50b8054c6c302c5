"""bench.compare_models, bench.crossval, bench.cv_head: pooled EER, paired bootstraps, CV scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.compare_models import pooled_eer


def test_pooled_eer_pools_the_chosen_writers_and_counts_repeats():
    trials = {
        "clean": (np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2])),
        "mixed": (np.array([1, 0]), np.array([0.3, 0.7])),  # its forgery outscores its genuine
    }
    assert pooled_eer(trials, ["clean"]) == 0.0
    assert pooled_eer(trials, ["mixed"]) == pytest.approx(1.0)
    one = pooled_eer(trials, ["clean", "mixed"])
    assert 0.0 < one < pooled_eer(trials, ["clean", "mixed", "mixed"])


def test_crossval_compares_recipes_fold_by_fold_on_the_same_writers():
    from bench.crossval import compare, fold_mean

    clean = (np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2]))
    mixed = (np.array([1, 0]), np.array([0.3, 0.7]))
    folds_a = [{"best": {"w1": clean, "w2": mixed}, "last": {"w1": clean, "w2": mixed}},
               {"best": {"w3": clean}, "last": {"w3": mixed}}]
    first_fold = pooled_eer(folds_a[0]["best"], ["w1", "w2"])
    assert fold_mean(folds_a, "best") == pytest.approx((first_fold + 0.0) / 2)
    same = compare(folds_a, folds_a, "last", rounds=50)
    assert same == {"difference": 0.0, "interval_95": [0.0, 0.0]}
    folds_b = [{"best": {"w1": clean, "w2": clean}, "last": {"w1": clean, "w2": clean}},
               {"best": {"w3": clean}, "last": {"w3": clean}}]  # B gets w2 and w3 right
    better = compare(folds_a, folds_b, "last", rounds=200)
    assert better["difference"] < 0 and better["interval_95"][1] <= 0
    with pytest.raises(SystemExit):
        compare(folds_a, [folds_b[0]], "best", rounds=1)  # not the same folds


def test_crossval_compares_the_last_epoch_with_the_kept_one_on_the_same_run():
    from bench.crossval import compare

    clean = (np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2]))
    mixed = (np.array([1, 0]), np.array([0.3, 0.7]))
    folds = [{"best": {"w1": clean, "w2": mixed}, "last": {"w1": clean, "w2": clean}}]
    worse_kept = compare(folds, folds, "best", rounds=100, variant_b="last")
    assert worse_kept["difference"] < 0  # the last epoch gets w2 right
    reverse = compare(folds, folds, "last", rounds=10, variant_b="best")
    assert reverse["difference"] == -worse_kept["difference"]


def _fold_card(root, fold: int, folds: int | None):
    run = root / f"cv-fold{fold}"
    run.mkdir()
    (run / "model.json").write_text(json.dumps({"hyperparameters": {"folds": folds, "fold": fold}}))


def test_crossval_takes_every_fold_of_one_cross_validation_or_refuses(tmp_path):
    from bench.crossval import fold_dirs

    prefix = str(tmp_path / "cv")
    with pytest.raises(SystemExit, match="missing"):
        fold_dirs(prefix)
    _fold_card(tmp_path, 1, 3)
    _fold_card(tmp_path, 2, 3)
    with pytest.raises(SystemExit, match="cv-fold3/model.json is missing"):
        fold_dirs(prefix)  # fold 3 of 3 not finished
    assert [p.name for p in fold_dirs(prefix, partial=True)] == ["cv-fold1", "cv-fold2"]
    _fold_card(tmp_path, 3, 4)
    with pytest.raises(SystemExit, match="not fold 3 of 3"):
        fold_dirs(prefix)  # a run of another cross-validation
    (tmp_path / "cv-fold3" / "model.json").unlink()
    (tmp_path / "cv-fold3").rmdir()
    _fold_card(tmp_path, 3, 3)
    _fold_card(tmp_path, 4, 3)  # beyond fold 3 of 3: not read
    assert [p.name for p in fold_dirs(prefix)] == ["cv-fold1", "cv-fold2", "cv-fold3"]


def test_crossval_saves_a_recipe_that_stands_in_for_its_runs_later(tmp_path):
    from bench.crossval import compare, recipe, save_recipe

    rng = np.random.default_rng(3)

    def trials(n):
        return np.array([1] * n + [0] * n), rng.random(2 * n)

    folds = [{"best": {"w1": trials(4), "w2": trials(3)}, "last": {"w1": trials(4), "w2": trials(2)}},
             {"best": {"w3": trials(5)}, "last": {"w3": trials(5)}}]
    summary = {"prefix": "runs/cv", "folds": 2, "eer_skilled_best": 0.1}
    path = tmp_path / "saved" / "cv.npz"
    save_recipe(path, folds, summary)
    loaded, loaded_summary = recipe(str(path), seeds=5, partial=False)
    assert loaded_summary == {**summary, "source": str(path)}
    assert [{v: sorted(f[v]) for v in f} for f in loaded] == [{v: sorted(f[v]) for v in f} for f in folds]
    for fold, again in zip(folds, loaded):
        for variant in ("best", "last"):
            for writer, (labels, scores) in fold[variant].items():
                assert again[variant][writer][0].tolist() == labels.tolist()  # order kept
                assert again[variant][writer][1].tolist() == scores.tolist()  # exact: float64 kept
                assert pooled_eer(again[variant], [writer]) == pooled_eer(fold[variant], [writer])
    assert compare(folds, loaded, "last", rounds=20)["difference"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(SystemExit, match="missing"):
        recipe(str(tmp_path / "none.npz"), seeds=5, partial=False)


@pytest.fixture(scope="module")
def fold_runs(tmp_path_factory):
    """Two tiny fold runs (``runs/cv-fold1``, ``-fold2`` of bench/crossval.sh) on ten synthetic writers."""
    from click.testing import CliRunner

    from tests.synthetic import write_cedar_layout
    from webapp.cli import main

    root = tmp_path_factory.mktemp("crossval")
    dataset = write_cedar_layout(root / "cedar", writers=10, genuine=8, forgeries=4)
    for fold in (1, 2):
        run = root / f"cv-fold{fold}"
        result = CliRunner().invoke(main, [
            "train", "--data", str(dataset), "--out", str(run / "model.keras"),
            "--work-dir", str(run / "work"), "--cache-dir", str(root / "cache"), "--epochs", "2",
            "--folds", "2", "--fold", str(fold), "--tiny", "--steps-per-epoch", "4",
            "--writers-per-batch", "4", "--quiet"])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def scored_on_fold_runs(fold_runs, monkeypatch):
    """bench's scoring reads the fold runs' synthetic dataset and cache."""
    from bench import compare_models

    monkeypatch.setattr(compare_models, "dataset_dirs", lambda: [fold_runs / "cedar"])
    monkeypatch.setattr(compare_models, "CACHE", fold_runs / "cache")
    return fold_runs


def _cards(root, name="cv"):
    return [json.loads((root / f"{name}-fold{k}" / "model.json").read_text()) for k in (1, 2)]


def test_crossval_scores_each_folds_best_and_last_epoch_on_its_own_validation_writers(scored_on_fold_runs):
    from bench import crossval

    root = scored_on_fold_runs
    folds, summary = crossval.recipe(str(root / "cv"), seeds=2, partial=False)
    cards = _cards(root)
    for fold, card in zip(folds, cards):
        assert sorted(fold["best"]) == sorted(fold["last"]) == sorted(card["split"]["validation"])
        labels = np.concatenate([fold["last"][w][0] for w in fold["last"]])
        assert 0 < labels.mean() < 1  # genuine and skilled trials of the fold's own writers
    validated = set(cards[0]["split"]["validation"]) | set(cards[1]["split"]["validation"])
    assert summary["writers"] == len(validated) == 8  # every train + validation writer once (test: 2)
    assert summary["folds"] == summary["folds_planned"] == 2 and summary["seeds"] == 2
    assert all(0.0 <= eer <= 1.0 for eer in summary["per_fold_best"] + summary["per_fold_last"])
    assert summary["eer_skilled_last"] == pytest.approx(np.mean(summary["per_fold_last"]))
    assert len(summary["validation_eer_by_epoch"]) == 2
    assert [run["validation"] for run in summary["runs"]] == [sorted(c["split"]["validation"]) for c in cards]
    assert summary["runs"][1]["hyperparameters"]["fold"] == 2


def test_cv_head_scores_the_cards_setting_as_crossval_does_and_others_differently(scored_on_fold_runs):
    from bench import crossval
    from bench.cv_head import setting_trials

    root = scored_on_fold_runs
    folds, _ = crossval.recipe(str(root / "cv"), seeds=2, partial=False)
    card = _cards(root)[1]
    head = card["hyperparameters"]["head"]
    card_setting = (head["regularisation"], head["normalisation_strength"])
    grid = setting_trials(root / "cv-fold2", card, "last", [(0.01, 0.0), card_setting], seeds=2)
    for writer, (labels, scores) in folds[1]["last"].items():
        assert grid[card_setting][writer][0].tolist() == labels.tolist()
        np.testing.assert_allclose(grid[card_setting][writer][1], scores, rtol=1e-9)
    assert any(not np.allclose(grid[(0.01, 0.0)][w][1], folds[1]["last"][w][1]) for w in folds[1]["last"])


def _crossval_main(monkeypatch, capsys, *args):
    from bench import crossval

    monkeypatch.setattr("sys.argv", ["bench.crossval", *map(str, args)])
    crossval.main()
    return json.loads(capsys.readouterr().out)


def test_crossval_saves_what_it_scored_and_compares_a_saved_recipe_with_runs(scored_on_fold_runs, monkeypatch,
                                                                              capsys):
    import shutil

    root = scored_on_fold_runs
    saved_dir = root / "saved"
    first = _crossval_main(monkeypatch, capsys, root / "cv", "--seeds", "2", "--rounds", "20",
                           "--save-dir", saved_dir)
    saved = saved_dir / "cv.npz"
    assert saved.is_file() and "runs" not in first["a"]
    with pytest.raises(SystemExit, match="exists"):  # refused before any scoring
        _crossval_main(monkeypatch, capsys, root / "cv", "--seeds", "2", "--save-dir", saved_dir)
    again = _crossval_main(monkeypatch, capsys, saved, root / "cv", "--seeds", "2", "--rounds", "20")
    assert again["a"]["source"] == str(saved)
    assert again["a"]["per_fold_last"] == first["a"]["per_fold_last"] == again["b"]["per_fold_last"]
    assert again["b_minus_a"]["last"]["difference"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(SystemExit, match="different reference draws"):
        _crossval_main(monkeypatch, capsys, saved, root / "cv", "--seeds", "3")
    for fold in (1, 2):  # the same runs, but the folds' writers swapped between train and validation
        shutil.copytree(root / f"cv-fold{fold}", root / f"other-fold{fold}", dirs_exist_ok=True)
        card_file = root / f"other-fold{fold}" / "model.json"
        card = json.loads(card_file.read_text())
        moved = card["split"]["validation"].pop()
        card["split"]["train"].append(moved)
        card_file.write_text(json.dumps(card))
    with pytest.raises(SystemExit, match="not cross-validated on the same folds"):
        _crossval_main(monkeypatch, capsys, saved, root / "other", "--seeds", "2")


def test_crossval_joins_folds_scored_in_two_sessions_into_one_recipe(scored_on_fold_runs, monkeypatch,
                                                                      capsys, tmp_path):
    """Fold 1 scored and saved with --partial (session one), fold 2 scored later with --continue
    (session two): the joined file is the recipe scored at once."""
    import shutil

    root = scored_on_fold_runs
    whole = _crossval_main(monkeypatch, capsys, root / "cv", "--seeds", "2", "--rounds", "20")
    shutil.copytree(root / "cv-fold1", tmp_path / "cv-fold1")  # session one: fold 2 not trained yet
    saved_dir = tmp_path / "saved"
    _crossval_main(monkeypatch, capsys, tmp_path / "cv", "--partial", "--seeds", "2", "--rounds", "20",
                   "--save-dir", saved_dir)
    saved = saved_dir / "cv.npz"
    with pytest.raises(SystemExit, match="reference draws"):
        _crossval_main(monkeypatch, capsys, root / "cv", "--continue", saved, "--seeds", "3")
    with pytest.raises(SystemExit, match="cv-fold2/model.json is missing"):  # nothing to add
        _crossval_main(monkeypatch, capsys, tmp_path / "cv", "--continue", saved, "--seeds", "2")
    shutil.copytree(root / "cv-fold2", tmp_path / "other-fold2")  # fold 2 of another cross-validation
    card_file = tmp_path / "other-fold2" / "model.json"
    card = json.loads(card_file.read_text())
    card["hyperparameters"]["folds"] = 3
    card_file.write_text(json.dumps(card))
    with pytest.raises(SystemExit, match="not the next ones"):
        _crossval_main(monkeypatch, capsys, tmp_path / "other", "--continue", saved, "--seeds", "2",
                       "--partial")
    joined = _crossval_main(monkeypatch, capsys, root / "cv", "--continue", saved, "--seeds", "2",
                            "--rounds", "20", "--save-dir", saved_dir)  # session two: fold 2 only
    assert joined["a"]["folds"] == 2 and joined["a"]["writers"] == whole["a"]["writers"]
    for key in ("per_fold_last", "per_fold_best", "eer_skilled_last", "eer_skilled_best"):
        assert joined["a"][key] == pytest.approx(whole["a"][key])
    # each session's curve is rounded to 4 decimals before they are averaged
    assert joined["a"]["validation_eer_by_epoch"] == pytest.approx(whole["a"]["validation_eer_by_epoch"],
                                                                   abs=1e-4)
    again = _crossval_main(monkeypatch, capsys, saved, root / "cv", "--seeds", "2", "--rounds", "20")
    assert again["b_minus_a"]["last"]["difference"] == pytest.approx(0.0, abs=1e-12)


def test_cv_head_reports_every_setting_against_the_cards_own(scored_on_fold_runs, monkeypatch, capsys):
    from bench import cv_head

    root = scored_on_fold_runs
    monkeypatch.setattr("sys.argv", ["bench.cv_head", str(root / "cv"), "--regularisation", "0.01",
                                     "--strength", "0", "1", "--seeds", "2", "--rounds", "20"])
    cv_head.main()
    report = json.loads(capsys.readouterr().out)
    card = report["card_setting"]
    rows = {(row["regularisation"], row["strength"]): row for row in report["settings"]}
    assert set(rows) == {(0.01, 0.0), (0.01, 1.0), (card["regularisation"], card["strength"])}
    own = rows.pop((card["regularisation"], card["strength"]))
    assert "minus_card_setting" not in own
    for row in rows.values():  # B - A with the card's setting as A
        difference = row["eer_skilled"] - own["eer_skilled"]
        assert row["minus_card_setting"]["difference"] == pytest.approx(difference)
    eers = [row["eer_skilled"] for row in report["settings"]]
    assert eers == sorted(eers)  # best first


def test_crossval_breaks_a_recipe_down_by_dataset():
    from bench.crossval import compare, dataset_folds, per_dataset

    clean = (np.array([1, 1, 0, 0]), np.array([0.9, 0.8, 0.1, 0.2]))
    mixed = (np.array([1, 0]), np.array([0.3, 0.7]))
    folds_a = [{"best": {"cedar/1": clean, "hindi/1": mixed}, "last": {"cedar/1": clean, "hindi/1": mixed}},
               {"best": {"hindi/2": clean}, "last": {"hindi/2": mixed}}]
    assert dataset_folds(folds_a, "cedar") == [{"best": {"cedar/1": clean}, "last": {"cedar/1": clean}}]
    assert per_dataset(folds_a) == {"cedar": {"best": 0.0, "last": 0.0},
                                    "hindi": {"best": pytest.approx(0.5), "last": pytest.approx(1.0)}}
    folds_b = [{v: {"cedar/1": mixed, "hindi/1": clean} for v in ("best", "last")},
               {v: {"hindi/2": clean} for v in ("best", "last")}]
    cedar_a, cedar_b = dataset_folds(folds_a, "cedar"), dataset_folds(folds_b, "cedar")
    hindi_a, hindi_b = dataset_folds(folds_a, "hindi"), dataset_folds(folds_b, "hindi")
    assert compare(cedar_a, cedar_b, "last", rounds=20)["difference"] == pytest.approx(1.0)  # B worse
    assert compare(hindi_a, hindi_b, "last", rounds=20)["difference"] == pytest.approx(-1.0)  # B better


def test_crossval_scores_with_the_rule_asked_for_and_refuses_to_compare_two_rules(scored_on_fold_runs,
                                                                                   monkeypatch, capsys):
    from bench import crossval

    root = scored_on_fold_runs
    folds_top, summary_top = crossval.recipe(str(root / "cv"), seeds=2, partial=False)
    folds_all, summary_all = crossval.recipe(str(root / "cv"), seeds=2, partial=False, top=0)
    assert summary_top["top"] == 3 and summary_all["top"] == 0  # the default head settings, or as asked
    for variant in crossval.VARIANTS:  # the same trials, scored by another rule
        for fold_top, fold_all in zip(folds_top, folds_all):
            assert sorted(fold_top[variant]) == sorted(fold_all[variant])
    assert any(not np.allclose(fold_top["last"][w][1], fold_all["last"][w][1])
               for fold_top, fold_all in zip(folds_top, folds_all) for w in fold_top["last"])
    saved_dir = root / "saved-top"
    _crossval_main(monkeypatch, capsys, root / "cv", "--seeds", "2", "--rounds", "20", "--top", "0",
                   "--save-dir", saved_dir)
    with pytest.raises(SystemExit, match="different decision rules"):  # refused before any scoring
        _crossval_main(monkeypatch, capsys, saved_dir / "cv.npz", root / "cv", "--seeds", "2")
    same = _crossval_main(monkeypatch, capsys, saved_dir / "cv.npz", root / "cv", "--seeds", "2",
                          "--rounds", "20", "--top", "0")
    assert same["b_minus_a"]["last"]["difference"] == pytest.approx(0.0, abs=1e-12)


def test_ensemble_fuses_logits_and_measures_the_fusion_against_both_models():
    from bench.ensemble import against_singles, fuse

    labels = np.array([1, 1, 0, 0])
    first = {"w1": (labels, np.array([0.9, 0.6, 0.7, 0.1])), "w2": (labels, np.array([0.9, 0.8, 0.1, 0.2]))}
    second = {"w1": (labels, np.array([0.9, 0.8, 0.1, 0.65])), "w2": (labels, np.array([0.9, 0.8, 0.1, 0.2]))}
    fused = fuse(first, second)
    # logit(0.6) + logit(0.8) > logit(0.7) + logit(0.1): the fusion ranks w1's forgery below both genuine
    assert fused["w1"][1][1] > fused["w1"][1][2]
    assert fused["w2"][1] == pytest.approx(np.log(first["w2"][1] / (1 - first["w2"][1])))
    found = against_singles(fused, first, second, rounds=50)
    assert found["eer_skilled"] == 0.0 and found["difference"] < 0
    with pytest.raises(ValueError, match="same trials of w1"):
        fuse(first, {"w1": (labels[::-1], first["w1"][1]), "w2": second["w2"]})


def test_principal_projection_keeps_the_spread_of_the_rows_and_ignores_unusable_ones():
    from bench.ensemble import principal_projection

    rng = np.random.default_rng(0)
    plane = rng.normal(size=(2, 5))  # rows spread along two directions of five, off the origin
    rows = 3.0 + rng.normal(size=(40, 2)) @ plane
    with_unusable = np.vstack([rows, np.zeros((3, 5))])
    project = principal_projection(with_unusable, 2)
    assert np.allclose(project(with_unusable[:40]), principal_projection(rows, 2)(rows))
    out = project(rows)
    assert out.shape == (40, 2) and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    # two axes hold all of the spread: directions from the centre survive the projection
    centred = rows - rows.mean(axis=0)
    cosines = (centred / np.linalg.norm(centred, axis=1, keepdims=True)) @ (
        centred / np.linalg.norm(centred, axis=1, keepdims=True)).T
    assert np.allclose(out @ out.T, cosines, atol=1e-5)
