"""Super-resolve images with an exported model in ONNX Runtime.

:class:`Upscaler` runs an exported model on whole images (``upscaler(rgb_uint8)``, what quality
scoring uses) or on any image OpenCV reads, tile by tile (:meth:`Upscaler.upscale_image`): gray,
BGR, BGRA, 8 or 16 bits, returned in the same layout and bit depth. Tiling with overlap and
whole-image channel statistics makes the tiled output equal the whole-image output (for the
window-attention Transformers when the overlap covers their wide receptive field, else close); see
:mod:`scales_edge.runtime.tiling`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from ..errors import ScalesEdgeError
from .contract import check_model as check_contract
from .pixels import quantize, resize_cubic, to_gray
from .session import DOMAIN, ModelError, check_metadata, domain_version, load_model, make_session, metadata

#: Default tile side (LR pixels of each tile's kept core) and the cap of the automatic overlap.
DEFAULT_TILE = 256


def check_model(proto: onnx.ModelProto, path: str | Path) -> None:
    """Refuse models scales-edge did not export, models that break the op contract (an op-domain
    version this release cannot run, an unknown attribute: :mod:`.contract`) and metadata the
    runtime would misuse (:func:`~.session.check_metadata`).

    A model qualifies if it uses the ``scales_edge`` op domain, or carries our metadata (the FP32
    reference export has no custom ops but is ours)."""
    meta = metadata(proto)
    version = domain_version(proto)
    uses_ops = any(n.domain == DOMAIN for n in proto.graph.node)
    if not uses_ops and version is None and "scales_edge.scale" not in meta:
        raise ModelError(
            f"{path}: not a scales-edge model (no {DOMAIN} ops and no scales_edge metadata); "
            "export a checkpoint with `scales-edge export CKPT OUT.onnx`"
        )
    check_contract(proto, str(path))
    check_metadata(proto, str(path))


def _tile_session(model: onnx.ModelProto, threads: int | None):
    """A session for tiles: ONNX Runtime's default node order (which
    :func:`~scales_edge.runtime.tiling.statistics_model` lays its graph out for; the native runner,
    on ORT's C API, can only use that one) and no per-shape memory pattern (tiles come in a few
    shapes, largest first, so the memory arena stays at one tile's high-water mark)."""
    import onnxruntime as ort

    from .library import get_library_path

    so = ort.SessionOptions()
    so.register_custom_ops_library(get_library_path())
    so.enable_mem_pattern = False
    if threads is not None:
        if threads < 1:
            raise ScalesEdgeError(f"threads must be >= 1, got {threads}")
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"ONNX Runtime cannot load the tiling graph: {str(exc).splitlines()[0]}") from None


class Upscaler:
    """An exported SR model ready to run on images."""

    def __init__(self, model_path: str, threads: int | None = None, *, check: bool = True) -> None:
        proto = load_model(model_path)
        if check:
            check_model(proto, model_path)
        meta = check_metadata(proto, model_path)
        try:
            self.scale = int(meta["scales_edge.scale"])
        except (KeyError, ValueError):
            raise ScalesEdgeError(f"{model_path}: no scales_edge.scale in the model metadata; export it with scales-edge") from None
        self.proto = proto
        self.meta = meta
        self.threads = threads
        self.session = make_session(model_path, threads=threads)
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        self.channels = shape[1] if len(shape) == 4 and isinstance(shape[1], int) else 3
        self.path = str(model_path)
        self._runner = None

    # ------------------------------------------------------------------ whole images, RGB uint8
    def run_tensor(self, x: np.ndarray) -> np.ndarray:
        """``[1, 3, H, W]`` float32 on [0, 1] → ``[1, 3, sH, sW]`` float32 (not clipped)."""
        from .tilerun import _run

        return _run(self.session, None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """``HxWx3`` uint8 RGB → ``sHxsWx3`` uint8 RGB (clipped and rounded like BasicSR)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ScalesEdgeError(f"expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}")
        x = rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        y = self.run_tensor(x)[0].transpose(1, 2, 0)
        return np.round(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)

    # ------------------------------------------------------------------ tiles, any image
    @property
    def runner(self):
        """The :class:`~scales_edge.runtime.tilerun.TiledRunner` (built on first use)."""
        if self._runner is None:
            from .tilerun import TiledRunner
            from .tiling import TilingError

            try:
                self._runner = TiledRunner(
                    self.proto,
                    lambda m, kind: _tile_session(m, self.threads),
                    full_session=self.session,
                )
            except TilingError as exc:
                raise TilingError(f"{self.path}: {exc}; run whole images instead (--tile 0)") from None
        return self._runner

    @property
    def window(self) -> int:
        """The attention window of a window-attention Transformer (SwinIR, HAT), 0 for a CNN. Its
        tiles are aligned to the window grid and exact only with an overlap of the model's
        receptive field (see :func:`~scales_edge.runtime.tiling.analyze_windowed`)."""
        from .tiling import model_config

        try:
            return int(model_config(self.proto).get("window_size") or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def min_side(self) -> int:
        """The smallest input side (LR pixels) every op of the model accepts."""
        from .tiling import TilingError

        try:
            return self.runner.geometry.min_side
        except TilingError:
            return 1

    def auto_overlap(self, tile: int) -> int:
        """The overlap that makes tiles exact (the receptive-field radius), capped at a quarter
        of the tile (at least 16) for models whose field is wider than that (RDN, RCAN, the
        real-size Transformers); window models' overlaps are whole windows."""
        from .tiling import aligned_overlap

        g = self.runner.geometry
        cap = aligned_overlap(max(16, tile // 4), g.window or 1)
        return min(g.exact_overlap, cap) if g.exact else cap

    def upscale_image(
        self,
        img: np.ndarray,
        tile: int = DEFAULT_TILE,
        overlap: int | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> np.ndarray:
        """Super-resolve an image as OpenCV reads it (``cv2.IMREAD_UNCHANGED``) and return the
        same layout and bit depth, ``s`` times larger:

        * gray ``HxW`` / ``HxWx1``: replicated to RGB for the model; the output goes back to gray
          with BT.601 luma weights (before rounding, :func:`~scales_edge.runtime.pixels.to_gray`);
        * ``HxWx3`` BGR; ``HxWx4`` BGRA: colour through the model, alpha upscaled bicubically
          (:func:`~scales_edge.runtime.pixels.resize_cubic`, OpenCV's ``INTER_CUBIC`` kernel);
        * ``uint8`` or ``uint16``: the model sees ``v / 255`` or ``v / 65535`` as float32, so 16-bit
          input keeps its precision; the output is rounded back to the same type.

        ``tile`` is the side (LR pixels) of the part of each tile that is kept (``0``: whole image
        at once); ``overlap`` the extra pixels each tile sees on every side (``None``: automatic,
        see :meth:`auto_overlap`).
        """
        arr = np.asarray(img)
        if arr.dtype == np.uint8:
            peak = 255.0
        elif arr.dtype == np.uint16:
            peak = 65535.0
        else:
            raise ScalesEdgeError(f"unsupported pixel type {arr.dtype}: upscale reads 8- and 16-bit images")
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim == 2:
            kind = "gray"
        elif arr.ndim == 3 and arr.shape[2] in (3, 4):
            kind = "bgr" if arr.shape[2] == 3 else "bgra"
        else:
            raise ScalesEdgeError(f"unsupported image layout {arr.shape}: expected gray, BGR or BGRA")
        h, w = arr.shape[:2]
        need = self.min_side
        if min(h, w) < need:
            raise ScalesEdgeError(f"the image is {w}x{h} px; this model needs at least {need}x{need} px")
        if tile < 0:
            raise ScalesEdgeError(f"tile must be >= 0 (0 = whole image), got {tile}")
        if overlap is not None and overlap < 0:
            raise ScalesEdgeError(f"overlap must be >= 0, got {overlap}")
        # The model's input: [1, C, H, W] float32 on [0, 1], RGB.
        if self.channels == 1:
            if kind != "gray":
                raise ScalesEdgeError("this model takes gray images (1 channel); convert the image to gray first")
            x = (arr.astype(np.float32) / peak)[None, None]
        elif kind == "gray":
            x = np.repeat((arr.astype(np.float32) / peak)[None, None], 3, axis=1)
        else:
            x = (arr[..., 2::-1].astype(np.float32) / peak).transpose(2, 0, 1)[None]
        x = np.ascontiguousarray(x)
        s = self.scale
        out_channels = {"gray": 1, "bgr": 3, "bgra": 4}[kind]
        out = np.empty((h * s, w * s, out_channels), dtype=arr.dtype)

        def write(t, y: np.ndarray) -> None:
            # y: [C, h, w] float32 on ~[0, 1], RGB
            want = ((t.y1 - t.y0) * s, (t.x1 - t.x0) * s)
            if y.shape[1:] != want:
                raise ScalesEdgeError(
                    f"the model gave {y.shape[2]}x{y.shape[1]} px for a {t.x1 - t.x0}x{t.y1 - t.y0} input, "
                    f"not x{s} as its metadata says; re-export it with scales-edge"
                )
            if kind == "gray" and y.shape[0] == 3:
                y = to_gray(y)
            q = quantize(y, arr.dtype)  # as __call__ (half to even)
            region = out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s]
            if kind == "gray":
                region[..., 0] = q[0]
            else:
                region[..., :3] = q[::-1].transpose(1, 2, 0)

        if tile == 0 or (h <= tile and w <= tile):
            self._run_whole(x, write)
            if on_progress:
                on_progress(1.0)
        else:
            ov = self.auto_overlap(tile) if overlap is None else overlap
            self.runner.run(x, tile, ov, write, on_progress)
        if kind == "bgra":
            out[..., 3] = resize_cubic(arr[..., 3], s)
        return out[..., 0] if kind == "gray" else out

    def _run_whole(self, x: np.ndarray, write) -> None:
        """Whole image in one run (no graph analysis, so any exported graph works)."""
        from .tiling import Tile

        y = self.run_tensor(x)[0]
        write(Tile(0, x.shape[2], 0, x.shape[3], 0, x.shape[2], 0, x.shape[3]), y)
