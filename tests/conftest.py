"""Shared fixtures: a tiny folder of real photo crops for the training / CLI tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from scales_edge.data import sample_photos

#: Side of the square crops saved in the tiny photo folder (divisible by 2, 3 and 4).
TINY_SIDE = 48


@pytest.fixture(scope="session")
def tiny_photo_dir(tmp_path_factory) -> Path:
    """Two ``TINY_SIDE`` x ``TINY_SIDE`` PNG crops of the packaged sample photos (textured regions)."""
    photos = sample_photos()
    names = [n for n in ("astronaut", "coffee", "chelsea", "grace_hopper") if n in photos][:2]
    if len(names) < 2:
        names = sorted(photos)[:2]
    if len(names) < 2:
        pytest.skip("need two packaged sample photos (scikit-image / matplotlib)")
    folder = tmp_path_factory.mktemp("tiny_photos")
    for name in names:
        bgr = cv2.imread(str(photos[name]), cv2.IMREAD_COLOR)
        assert bgr is not None, photos[name]
        h, w = bgr.shape[:2]
        y0, x0 = (h - TINY_SIDE) // 3, (w - TINY_SIDE) // 2
        crop = bgr[y0 : y0 + TINY_SIDE, x0 : x0 + TINY_SIDE]
        assert cv2.imwrite(str(folder / f"{name}.png"), crop)
    return folder
