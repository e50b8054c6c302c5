"""bench.capture_shift: the capture changes, and scoring changed queries against unchanged references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage

from bench import capture_shift
from siamese.datasets import load_dataset
from siamese.model import SignatureModel
from tests.synthetic import synthetic_signature, write_cedar_layout
from webapp.cli import main


@pytest.fixture
def signature() -> Image.Image:
    return synthetic_signature(1, 1, background=230)


def ink_pixels(image: Image.Image) -> int:
    return int((np.asarray(image.convert("L")) < 128).sum())


def test_each_change_does_what_it_says(signature: Image.Image):
    width, height = signature.size
    assert capture_shift.SHIFTS["half_resolution"](signature).size == (round(width / 2), round(height / 2))
    rotated = capture_shift.SHIFTS["rotated_4_degrees"](signature)
    assert rotated.width > width and rotated.height > height and rotated.getpixel((0, 0)) >= 200
    colour = np.asarray(capture_shift.SHIFTS["blue_ink_cream_paper"](Image.new("L", (4, 1), 0)))
    assert colour.shape == (1, 4, 3) and tuple(colour[0, 0]) == capture_shift.BLUE_INK
    assert tuple(np.asarray(capture_shift.blue_ink_on_cream(Image.new("L", (1, 1), 255)))[0, 0]) == \
        capture_shift.PAPER
    shaded = np.asarray(capture_shift.SHIFTS["shadow"](Image.new("L", (50, 3), 200)), dtype=int)
    assert shaded[0, 0] == 200 and shaded[0, -1] == 120
    assert ink_pixels(capture_shift.SHIFTS["thicker_pen"](signature)) > ink_pixels(signature)
    assert 0 < ink_pixels(capture_shift.SHIFTS["thinner_pen"](signature)) < ink_pixels(signature)
    finer, paler = (capture_shift.SHIFTS[name](signature) for name in ("finer_pen", "thinner_pen"))
    assert ink_pixels(paler) < ink_pixels(finer) < ink_pixels(signature)
    dark = np.asarray(signature.convert("L")) < 60  # the finer pen's ink is as dark as before
    assert (np.asarray(finer) < 60).sum() >= 0.3 * dark.sum()
    assert (np.asarray(paler) < 60).sum() < 0.3 * dark.sum()
    pieces = [ndimage.label(np.asarray(page.convert("L")) < 128, structure=np.ones((3, 3)))[1]
              for page in (signature, finer)]
    assert pieces[1] == pieces[0]  # narrower strokes, none broken
    for name in ("jpeg_q20", "noisy_blurred"):
        changed = np.asarray(capture_shift.SHIFTS[name](signature), dtype=int)
        original = np.asarray(signature.convert("L"), dtype=int)
        assert changed.shape == (height, width) and np.abs(changed - original).max() > 5
    assert capture_shift.SHIFTS["none"](signature) is signature
    lined = np.asarray(capture_shift.SHIFTS["signature_line"](signature))
    assert ((lined == 60).all(axis=1)).sum() == 3  # three full-width rows
    boxed = np.asarray(capture_shift.SHIFTS["box_crop"](signature))
    assert (boxed[4:7, 4:-4] == 60).all() and (boxed[4:-4, -7:-4] == 60).all() and boxed[0, 0] != 60
    tight = np.asarray(capture_shift.SHIFTS["tight_box"](signature))
    frame_rows = np.flatnonzero((tight == 60).sum(axis=1) > 20)
    assert frame_rows.size == 6 and tight[0].max() > 60 and (tight[:, 0] != 60).all()


def test_line_and_frame_are_placed_by_the_handwriting_not_a_scanner_edge_line(signature: Image.Image):
    page = np.asarray(signature.convert("L")).copy()
    ink_rows = np.flatnonzero((page < 128).any(axis=1))
    top, bottom = int(ink_rows[0]), int(ink_rows[-1])
    page[-3:, :] = 40  # a scanner's dark line along the bottom edge of the page
    edged = Image.fromarray(page)
    lined = np.asarray(capture_shift.signature_line(edged))
    row = top + (bottom - top) * 85 // 100
    assert (lined[row - 1 : row + 2] == 60).all()  # at 85% of the signature, not of signature + edge
    tight = np.asarray(capture_shift.tight_box(edged))
    assert (tight[min(bottom + 10, page.shape[0] - 4), :] == 60).sum() > 20  # the frame's bottom side


def test_unchanged_queries_reproduce_evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = write_cedar_layout(tmp_path / "cedar", writers=4, genuine=7, forgeries=2)
    monkeypatch.setattr(capture_shift, "CACHE", tmp_path / "cache")
    writers = {record.writer for record in load_dataset(root)}
    result = capture_shift.run(["none", "half_resolution"], SignatureModel.load(), [root], writers)
    evaluated = CliRunner().invoke(main, ["evaluate", "--data", str(root), "--writers", "all", "--json",
                                          "--cache-dir", str(tmp_path / "evaluate-cache")])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    unchanged = result["cedar"]["none"]
    assert unchanged["unusable_queries"] == 0
    for key in ("eer_skilled", "eer_random", "far", "frr", "far_random"):
        assert unchanged[key] == pytest.approx(report[key])
    assert set(result["cedar"]["half_resolution"]) == set(unchanged)


def test_queries_preprocessing_rejects_are_counted_not_scored(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    root = write_cedar_layout(tmp_path / "cedar", writers=4, genuine=7, forgeries=2)
    monkeypatch.setattr(capture_shift, "CACHE", tmp_path / "cache")
    monkeypatch.setitem(capture_shift.SHIFTS, "blank", lambda image: Image.new("L", image.size, 255))
    writers = {record.writer for record in load_dataset(root)}
    result = capture_shift.run(["blank"], SignatureModel.load(), [root], writers)
    # per writer: 2 genuine queries (7 - 5 references), 2 skilled, 3 random
    assert result["cedar"]["blank"] == {"unusable_queries": 4 * 7}


def test_dataset_pages_counts_the_pages_preprocessing_changes(tmp_path: Path):
    even = write_cedar_layout(tmp_path / "even", writers=2, genuine=2, forgeries=1)
    changed = write_cedar_layout(tmp_path / "changed", writers=2, genuine=2, forgeries=1)
    originals = sorted((changed / "full_org").iterdir())
    for path in originals[:3]:
        with Image.open(path) as image:
            capture_shift.shadow(image).save(path)
    with Image.open(originals[3]) as image:
        capture_shift.signature_line(image).save(originals[3])
    pages = capture_shift.dataset_pages([even, changed])
    assert pages["even"]["images"] == pages["changed"]["images"] == 6
    assert pages["even"]["evened_out"] == pages["even"]["rules_dropped"] == 0
    assert pages["even"]["paper_spread_max"] < 24
    assert pages["changed"]["evened_out"] == 3 and pages["changed"]["paper_spread_max"] > 60
    assert pages["changed"]["rules_dropped_files"] == [str(originals[3].relative_to(changed))]


def test_tight_crops_of_handwriting_keep_their_ink(tmp_path: Path):
    root = write_cedar_layout(tmp_path / "cedar", writers=3, genuine=2, forgeries=1)
    lined = sorted((root / "full_org").iterdir())[0]
    page = np.full((400, 900), 255, dtype=np.uint8)
    with Image.open(lined) as image:
        page[100 : 100 + image.height, 200 : 200 + image.width] = np.asarray(image.convert("L"))
    page[200:203, :] = 60  # a printed line reaching far past the signature: a page with a rule
    Image.fromarray(page).save(lined)
    for margin in (2, 0):
        result = capture_shift.tight_crops(per_dataset=9, roots=[root], margin=margin)
        assert result["pages"] == 8 and result["crops"] == 16  # the lined page is left out
        assert result["changed"] == []


def test_a_crop_with_no_margin_cuts_a_level_underline_at_both_ends(tmp_path: Path):
    """The limit of the side-to-side rule: an underline as wide as the ink, level within a pixel,
    is taken for a printed line once the crop leaves no paper beyond its ends."""
    root = write_cedar_layout(tmp_path / "cedar", writers=1, genuine=1, forgeries=0)
    path = next((root / "full_org").iterdir())
    with Image.open(path) as image:
        gray = np.array(image.convert("L"))
    ink = gray < 128
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    gray[rows[-1] - 2 : rows[-1] + 1, cols[0] : cols[-1] + 1] = 30
    Image.fromarray(gray).save(path)
    assert capture_shift.tight_crops(per_dataset=1, roots=[root], margin=2)["changed"] == []
    changed = capture_shift.tight_crops(per_dataset=1, roots=[root], margin=0)["changed"]
    assert [entry["wider"] for entry in changed] == [False, True]
