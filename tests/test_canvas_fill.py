"""bench.canvas_fill: the ink's box on a canvas and how much larger another canvas draws it."""

from __future__ import annotations

import numpy as np
import pytest

from bench.canvas_fill import INK_LEVEL, drawn_scale, ink_boxes


def test_ink_boxes_measure_the_ink_above_the_level_and_nothing_on_a_blank_canvas() -> None:
    canvases = np.zeros((3, 150, 220), dtype=np.uint8)
    canvases[0, 40:60, 10:110] = 255  # a 20 x 100 stroke
    canvases[0, 0, 0] = INK_LEVEL  # at the level: not ink
    canvases[1, 5, 7] = canvases[1, 140, 200] = INK_LEVEL + 1  # two specks span the box
    assert ink_boxes(canvases).tolist() == [[20, 100], [136, 194], [0, 0]]


def test_drawn_scale_of_a_wider_lower_canvas() -> None:
    # ink 4.5 times as wide as high: width-limited on both canvases, 272 / 212 times larger
    assert drawn_scale(4.5, (150, 220), (120, 280), 4) == pytest.approx(272 / 212)
    # ink as high as wide: height-limited on both, 112 / 142
    assert drawn_scale(1.0, (150, 220), (120, 280), 4) == pytest.approx(112 / 142)
    assert drawn_scale(2.0, (150, 220), (150, 220), 4) == pytest.approx(1.0)
