"""``scales-edge upscale``: files, folders and globs through an exported model, tiled."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from ..errors import ScalesEdgeError
from .common import check_scale, command, debugging, fail, one_line, progress_bar



# ------------------------------------------------------------------------------------ upscale

_GLOB_CHARS = set("*?[")
#: What each output format can store: (16-bit, alpha).
_FORMATS = {".png": (True, True), ".tif": (True, True), ".tiff": (True, True), ".jpg": (False, False),
            ".jpeg": (False, False), ".bmp": (False, True), ".webp": (False, True)}


def _upscale_inputs(spec: str, scale: int) -> list[Path]:
    """INPUT as a file, a folder (its images, minus earlier outputs) or a glob."""
    import glob

    from ..data import IMAGE_EXTENSIONS, list_images

    path = Path(spec)
    if path.is_dir():
        files = list_images(path)
        stems = {p.stem for p in files}
        # Leave out this command's own earlier outputs (<stem>_x<scale>.png beside <stem>.*).
        suffix = f"_x{scale}"
        return [p for p in files if not (p.stem.endswith(suffix) and p.stem[: -len(suffix)] in stems)]
    if path.is_file():
        return [path]
    if _GLOB_CHARS & set(spec):
        files = sorted(Path(p) for p in glob.glob(spec) if Path(p).is_file())
        files = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            fail(f"no image file matches {spec!r} ({', '.join(IMAGE_EXTENSIONS)})")
        return files
    fail(f"{spec}: no such file or folder; give an image, a folder of images or a quoted glob ('photos/*.jpg')")
    return []


def _upscale_outputs(inputs: list[Path], output: Optional[Path], scale: int, overwrite: bool, single: bool) -> list[Path]:
    def name(p: Path) -> str:
        return f"{p.stem}_x{scale}.png"

    if output is None:
        outs = [p.parent / name(p) for p in inputs]
    elif single and not output.is_dir() and output.suffix and not str(output).endswith(("/", "\\")):
        if output.suffix.lower() not in _FORMATS:
            fail(f"{output}: unknown image format {output.suffix!r}; use one of {', '.join(_FORMATS)}")
        outs = [output]
    else:
        if output.exists() and not output.is_dir():
            fail(f"{output} is a file; with several inputs OUTPUT must be a folder")
        outs = [output / name(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for src, dst in zip(inputs, outs):
        key = dst.resolve()
        if key in seen:
            fail(f"{seen[key]} and {src} would both be written to {dst}; upscale them into different folders")
        seen[key] = src
    in_set = {p.resolve() for p in inputs}
    for src, dst in zip(inputs, outs):
        if dst.resolve() in in_set and not overwrite:
            fail(f"{dst} is an input; refusing to overwrite it (pass --overwrite to replace it)")
        if dst.exists() and not overwrite:
            hint = " (if your shell expanded a glob into two names, quote the glob: 'photos/*.png')" if single and output else ""
            fail(f"{dst} exists; pass --overwrite to replace it, or choose another OUTPUT{hint}")
    return outs


def _write_image(path: Path, img) -> None:
    """Write an OpenCV-layout image (gray/BGR/BGRA, 8 or 16 bit) atomically (temp file, rename)."""
    import cv2
    import numpy as np

    from ..fileio import atomic_write_bytes

    ext = path.suffix.lower()
    deep, alpha = _FORMATS[ext]
    if img.dtype == np.uint16 and not deep:
        raise ScalesEdgeError(f"{path}: {ext} cannot store 16-bit images; write .png or .tif")
    if img.ndim == 3 and img.shape[2] == 4 and not alpha:
        raise ScalesEdgeError(f"{path}: {ext} cannot store an alpha channel; write .png, .tif or .webp")
    ok, buf = cv2.imencode(ext, img)
    if not ok:
        raise ScalesEdgeError(f"{path}: OpenCV could not encode the image as {ext}")
    atomic_write_bytes(path, buf.tobytes())


@command("upscale")
def upscale_cmd(
    input: str = typer.Argument(..., help="An image, a folder of images, or a quoted glob ('photos/*.jpg')."),
    output: Optional[Path] = typer.Argument(
        None, help="Output file (one input) or folder. Default: <stem>_x<scale>.png next to each input."
    ),
    model: Path = typer.Option(..., "--model", "-m", help="Exported ONNX model (scales-edge export)."),
    tile: int = typer.Option(256, help="Tile side in LR pixels (the kept part of each tile); 0 = whole image at once."),
    overlap: Optional[int] = typer.Option(
        None, help="Extra LR pixels each tile sees on every side. Default: the model's receptive-field radius "
        "(tiled output = whole-image output), at most a quarter of the tile (at least 16). Transformers (SwinIR, "
        "HAT): whole windows; a real-size model's field is wider than the default, so its tiles come out close to "
        "a whole-image run, not equal (docs/benchmarks-transformers.md)."
    ),
    threads: Optional[int] = typer.Option(None, help="ORT intra-op threads (default: all cores)."),
    scale: Optional[int] = typer.Option(None, "--scale", help="Expected scale; an error if the model's differs."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files (even an input)."),
) -> None:
    """Super-resolve images: files, folders or globs; gray, RGB, RGBA and 16-bit kept as they are.

    Colour goes through the model (gray is replicated to RGB and converted back); an alpha channel is upscaled bicubically; 16-bit images stay 16-bit (the model runs on float input). Large images run in tiles with overlap, and the channel statistics of SCALES' re-scaling are taken over the whole image, so the result equals a whole-image run while memory stays bounded. Window-attention Transformers (SwinIR, HAT) get tiles aligned to their window grid and the same whole-image statistics; their tiles equal a whole-image run when --overlap covers their receptive field (the first line printed says whether it does) and are close otherwise; --tile 0 runs whole images. Never overwrites a file unless --overwrite. An image that cannot be read or upscaled does not stop the others: the failures are listed at the end and the exit code is 2.

    Example: scales-edge upscale photo.jpg --model model.onnx

    Example: scales-edge upscale 'shots/*.png' out/ --model model.onnx --tile 192 --threads 2

    Example (SwinIR-light, overlap covering its 175-px receptive field): scales-edge upscale big.png -m swinir_light.onnx --overlap 176
    """
    from ..data import imread_any
    from ..runtime.infer import Upscaler
    from ..runtime.memory import check_run_fits

    if tile < 0:
        fail(f"--tile must be >= 0 (0 = whole image), got {tile}")
    if overlap is not None and overlap < 0:
        fail(f"--overlap must be >= 0, got {overlap}")
    upscaler = Upscaler(str(model), threads=threads)
    s = upscaler.scale
    check_scale(model, s, scale, "--scale")
    inputs = _upscale_inputs(input, s)
    single = len(inputs) == 1 and Path(input).is_file()
    outputs = _upscale_outputs(inputs, output, s, overwrite, single)
    if tile:
        from ..runtime.tiling import TilingError, aligned_overlap

        try:
            g = upscaler.runner.geometry
            ov = aligned_overlap(upscaler.auto_overlap(tile) if overlap is None else overlap, g.window or 1)
            if not g.exact:
                note = "receptive field unknown: approximate near tile borders"
            elif ov >= g.exact_overlap:
                note = "covers the receptive field"
            elif g.window:  # window attention: a difference at a tile border does not fade
                note = f"below the receptive field, {g.exact_overlap} px: approximate, see docs/benchmarks-transformers.md; --tile 0 is exact"
            else:
                note = f"below the receptive field, {g.exact_overlap} px: near-exact"
            typer.echo(f"{model.name}: x{s}, tiles of {tile} px + {ov} px overlap ({note})", err=True)
        except TilingError:  # images larger than a tile will say so
            pass
    t_all = time.perf_counter()
    failed: list[tuple[Path, str]] = []
    with progress_bar("upscale") as bar:
        task = bar.add_task("upscale", total=len(inputs), info="")
        for i, (src, dst) in enumerate(zip(inputs, outputs)):
            bar.update(task, completed=i, info=src.name)
            t0 = time.perf_counter()
            try:  # a bad image does not stop the others; the failures are reported at the end
                img = imread_any(src)
                h, w = img.shape[:2]
                check_run_fits(upscaler.meta, upscaler.channels, min(h, tile or h), min(w, tile or w), str(src))
                out = upscaler.upscale_image(
                    img, tile=tile, overlap=overlap, on_progress=lambda f, i=i: bar.update(task, completed=i + f)
                )
                _write_image(dst, out)
            except (ScalesEdgeError, OSError, ValueError) as exc:
                if debugging():
                    raise
                failed.append((src, one_line(exc)))
                bar.console.print(f"{src}: skipped, {failed[-1][1]}", highlight=False, style="red")
                continue
            kind = "gray" if out.ndim == 2 else {3: "RGB", 4: "RGBA"}[out.shape[2]]
            bar.console.print(
                f"{src} -> {dst} ({w}x{h} -> {w * s}x{h * s}, {kind}, {out.dtype.itemsize * 8}-bit, "
                f"{time.perf_counter() - t0:.1f} s)",
                highlight=False,
            )
        bar.update(task, completed=len(inputs), info="done")
    done = len(inputs) - len(failed)
    typer.echo(f"upscaled {done} image(s) x{s} in {time.perf_counter() - t_all:.1f} s")
    if failed:
        src, why = failed[0]
        more = f" (and {len(failed) - 1} more, listed above)" if len(failed) > 1 else ""
        fail(f"{len(failed)} of {len(inputs)} image(s) failed; {src}: {why}{more}")
