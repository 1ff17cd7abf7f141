"""Super-resolve images with an exported model in ONNX Runtime."""

from __future__ import annotations

import numpy as np

from ..errors import ScalesEdgeError
from .session import load_model, make_session, metadata


class Upscaler:
    """An exported SR model ready to run on ``HxWx3`` uint8 RGB images."""

    def __init__(self, model_path: str, threads: int | None = None) -> None:
        proto = load_model(model_path)
        meta = metadata(proto)
        try:
            self.scale = int(meta["scales_edge.scale"])
        except (KeyError, ValueError):
            raise ScalesEdgeError(f"{model_path}: no scales_edge.scale in the model metadata; export it with scales-edge") from None
        self.session = make_session(model_path, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        self.path = str(model_path)

    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        """``[1, 3, H, W]`` float32 on [0, 1] → ``[1, 3, sH, sW]`` float32 (not clipped)."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``HxWx3`` uint8 RGB → ``sHxsWx3`` uint8 RGB (clipped and rounded like BasicSR)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ScalesEdgeError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        y = self.run_tensor(x)[0].transpose(1, 2, 0)
        return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)
