"""Image quality of an SR model on HR photos, beside bicubic (BasicSR convention).

HR → mod-crop → MATLAB-bicubic LR (:func:`scales_edge.data.make_lr`) → super-resolve → PSNR and SSIM
on the Y channel with ``crop_border = scale``. Bicubic is MATLAB-compatible bicubic upscaling of the
same LR image, the baseline papers report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np

from .data import imread, imresize, imwrite, make_lr, modcrop
from .errors import ScalesEdgeError
from .metrics import calculate_psnr, calculate_ssim

Upscale = Callable[[np.ndarray], np.ndarray]  # HxWx3 uint8 RGB -> sHxsWx3 uint8 RGB


@dataclass
class ImageScore:
    image: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    return imresize(lr, scale)


def _saved(save_dir: Path, image: Path) -> tuple[Path, Path]:
    stem = Path(image).stem
    return Path(save_dir) / f"{stem}_sr.png", Path(save_dir) / f"{stem}_compare.png"


def score_images(
    upscale: Upscale,
    paths: Sequence[Path],
    scale: int,
    save_dir: Path | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> list[ImageScore]:
    """Score ``upscale`` on each HR image; with ``save_dir`` also write SR images and comparisons
    (``<stem>_sr.png``, ``<stem>_compare.png``; refused up front if one of them is an input)."""
    if save_dir is not None:
        from .fileio import same_file

        for p in paths:
            for out in _saved(save_dir, p):
                hit = next((q for q in paths if same_file(out, q)), None)
                if hit is not None:
                    raise ScalesEdgeError(f"{out} is one of the input images; refusing to overwrite it: choose another --save-dir")
    scores = []
    for i, p in enumerate(paths):
        hr = modcrop(imread(p), scale)
        lr = make_lr(hr, scale)
        sr = upscale(lr)
        if sr.shape != hr.shape:
            raise ValueError(f"{p}: the model gave {sr.shape[1]}x{sr.shape[0]} for an HR image of {hr.shape[1]}x{hr.shape[0]}")
        bic = bicubic_upscale(lr, scale)
        scores.append(
            ImageScore(
                Path(p).name,
                calculate_psnr(sr, hr, scale),
                calculate_ssim(sr, hr, scale),
                calculate_psnr(bic, hr, scale),
                calculate_ssim(bic, hr, scale),
            )
        )
        if save_dir is not None:
            sr_path, compare_path = _saved(save_dir, p)
            imwrite(sr_path, sr)
            imwrite(compare_path, comparison_strip(hr, bic, sr))
        if on_image:
            on_image(i + 1, len(paths))
    return scores


def mean_scores(scores: Sequence[ImageScore]) -> dict[str, float]:
    keys = ("psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
    return {k: float(np.mean([getattr(s, k) for s in scores])) for k in keys}


def scores_to_dict(scores: Sequence[ImageScore]) -> dict:
    return {"images": [asdict(s) for s in scores], "mean": mean_scores(scores)}


def _busiest_crop(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` square with the most detail (gradient energy)."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    energy = np.abs(cv2.Laplacian(gray, cv2.CV_32F))
    box = cv2.boxFilter(energy, -1, (size, size), normalize=True, borderType=cv2.BORDER_CONSTANT)
    h, w = gray.shape
    half = size // 2
    valid = box[half : h - size + half + 1, half : w - size + half + 1]
    y, x = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(y), int(x)


def comparison_strip(hr: np.ndarray, bicubic: np.ndarray, sr: np.ndarray, crop: int = 96, zoom: int = 3) -> np.ndarray:
    """The same crop of HR | bicubic | model side by side, enlarged and labelled (RGB uint8)."""
    crop = min(crop, hr.shape[0], hr.shape[1])
    y, x = _busiest_crop(hr, crop)
    tiles = []
    for label, img in (("HR", hr), ("bicubic", bicubic), ("model", sr)):
        tile = cv2.resize(img[y : y + crop, x : x + crop], (crop * zoom, crop * zoom), interpolation=cv2.INTER_NEAREST)
        band = np.full((28, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(band, label, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.vstack([band, tile]))
        tiles.append(np.full((tiles[-1].shape[0], 4, 3), 255, np.uint8))
    return np.hstack(tiles[:-1])


#: SSIM's window side (pixels): the scored image must be at least this large after the border crop.
SSIM_WINDOW = 11


def min_hr_side(scale: int, min_lr_side: int = 1) -> int:
    """Smallest HR side (after mod-crop) :func:`score_images` can score at ``scale``: SSIM's
    11-pixel window must fit after cropping ``scale`` pixels from each border, and the LR image
    must be at least ``min_lr_side`` pixels (what the model accepts)."""
    return max(SSIM_WINDOW + 2 * scale, min_lr_side * scale)


def torch_upscale(model) -> Upscale:
    """A PyTorch SR model as an :data:`Upscale` callable (eval mode, no grad, uint8 RGB in and out)."""
    import torch

    from .metrics import tensor_to_uint8, uint8_to_tensor

    model = model.eval()

    def run(rgb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return tensor_to_uint8(model(uint8_to_tensor(rgb)))

    return run
