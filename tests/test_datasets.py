"""Dataset loaders: layouts, detection, duplicates, manifests and the writer split."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from siamese.datasets import (
    DatasetError,
    UnknownLayoutError,
    detect_layout,
    load_dataset,
    split_writers,
)
from tests.synthetic import (
    write_bhsig_layout,
    write_cedar_layout,
    write_manifest_layout,
    write_sigcomp_layout,
)

WRITERS = {
    "cedar": (write_cedar_layout, ["1", "2", "3", "4"]),
    "bhsig": (write_bhsig_layout, ["1", "2", "3", "4"]),
    "sigcomp": (write_sigcomp_layout, ["001", "002", "003", "004"]),
    "manifest": (write_manifest_layout, ["writer1", "writer2", "writer3", "writer4"]),
}


@pytest.mark.parametrize("layout", sorted(WRITERS))
def test_each_layout_is_detected_and_loaded(tmp_path, layout):
    writer_fn, ids = WRITERS[layout]
    root = writer_fn(tmp_path / f"my-{layout}", writers=4, genuine=5, forgeries=3)
    assert detect_layout(root) == layout
    records = load_dataset(root)
    assert len(records) == 4 * 8
    assert {r.dataset for r in records} == {f"my-{layout}"}
    assert sorted({r.writer for r in records}) == sorted(f"my-{layout}/{i}" for i in ids)
    for writer in {r.writer for r in records}:
        mine = [r for r in records if r.writer == writer]
        assert sum(r.genuine for r in mine) == 5 and sum(not r.genuine for r in mine) == 3
        assert [r.genuine for r in mine] == sorted((r.genuine for r in mine), reverse=True)
    assert load_dataset(root, layout) == records


def test_genuine_and_forgery_labels_follow_file_names(tmp_path):
    root = write_cedar_layout(tmp_path / "cedar", writers=2, genuine=2, forgeries=1)
    by_name = {r.path.name: r.genuine for r in load_dataset(root)}
    assert by_name["original_1_2.png"] is True
    assert by_name["forgeries_2_1.png"] is False


def test_exact_duplicate_files_are_dropped(tmp_path):
    root = write_bhsig_layout(tmp_path / "bengali", writers=2, genuine=3, forgeries=1)
    shutil.copy(root / "1" / "B-S-1-G-01.png", root / "1" / "B-S-1-G-09.png")
    records = load_dataset(root)
    assert len(records) == 2 * 4
    assert not any(r.path.name == "B-S-1-G-09.png" for r in records)


def test_non_image_and_unmatched_files_are_ignored(tmp_path):
    root = write_cedar_layout(tmp_path / "cedar", writers=2, genuine=2, forgeries=1)
    (root / "full_org" / "Thumbs.db").write_bytes(b"junk")
    (root / "full_org" / "readme.png").write_bytes(b"not matched by the naming pattern")
    assert len(load_dataset(root)) == 6


def test_unknown_layout_is_a_clear_error(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.png").write_bytes(b"x")
    with pytest.raises(UnknownLayoutError, match="matches no known layout") as error:
        detect_layout(tmp_path / "photos")
    assert error.value.code == "unknown_layout"


def test_missing_folder_and_bad_layout_name(tmp_path):
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset(tmp_path / "absent")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_dataset(tmp_path / "absent", "cedar")
    with pytest.raises(DatasetError, match="unknown layout 'kaggle'"):
        load_dataset(tmp_path, "kaggle")


def test_a_named_layout_with_no_images_is_an_error(tmp_path):
    (tmp_path / "full_org").mkdir()
    with pytest.raises(DatasetError, match="no signature images"):
        load_dataset(tmp_path, "cedar")


def _manifest(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.csv").write_text(text)
    return root


def test_manifest_errors_name_the_line_or_column(tmp_path):
    source = write_manifest_layout(tmp_path / "m", writers=1, genuine=1, forgeries=0)
    image = "images/w1_1.png"
    with pytest.raises(DatasetError, match="lacks the column.*label"):
        load_dataset(_manifest(source, f"path,writer\n{image},a\n"))
    with pytest.raises(DatasetError, match="line 2: label 'maybe'"):
        load_dataset(_manifest(source, f"path,writer,label\n{image},a,maybe\n"))
    with pytest.raises(DatasetError, match="line 3: empty path or writer"):
        load_dataset(_manifest(source, f"path,writer,label\n{image},a,genuine\n{image},,genuine\n"))
    with pytest.raises(DatasetError, match="1 missing file.*gone.png"):
        load_dataset(_manifest(source, f"path,writer,label\n{image},a,genuine\ngone.png,a,forgery\n"))


def test_manifest_accepts_common_label_spellings(tmp_path):
    source = write_manifest_layout(tmp_path / "m", writers=1, genuine=2, forgeries=2)
    rows = ["images/w1_1.png,a,Genuine", "images/w1_2.png,a,1", "images/w1_3.png,a,forged",
            "images/w1_4.png,a,0"]
    records = load_dataset(_manifest(source, "path,writer,label\n" + "\n".join(rows) + "\n"))
    assert [r.genuine for r in records] == [True, True, False, False]


def test_split_is_seeded_disjoint_and_complete():
    writers = [f"d/{i}" for i in range(55)]
    split = split_writers(writers, seed=1234)
    assert split == split_writers(list(reversed(writers)), seed=1234)
    assert split != split_writers(writers, seed=1)
    assert [len(split[k]) for k in ("train", "validation", "test")] == [38, 6, 11]
    assert sorted(split["train"] + split["validation"] + split["test"]) == sorted(writers)


def test_split_of_few_writers_keeps_a_validation_writer():
    split = split_writers(["a", "b", "c"], seed=0)
    assert len(split["validation"]) == 1
