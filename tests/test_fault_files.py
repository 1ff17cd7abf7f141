"""Files are never lost or left half-written, and the CLI's edges are clean errors (issue 16).

* Interrupted writes: a command run in a subprocess under a file-size limit (``RLIMIT_FSIZE``:
  Python then gets ``EFBIG``) or killed with SIGKILL part-way leaves the previous file intact (or
  no file), never a partial one; a killed run may leave only a hidden ``.<name>.*.tmp``.
* An output that is one of the inputs is refused before any work; ``export`` replaces a file only
  with ``--overwrite``.
* CLI edges: ``export --opset 99``, sizes larger than memory, a model whose metadata says
  ``scale=-4``: exit 2 and one line naming the cause; a folder ``upscale`` goes on past an
  unreadable image and reports it at the end.

The kill sweep over many moments of an export is behind ``-m fault_sweep``.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from _opslib import require_installed_library
from scales_edge import build_model, save_checkpoint
from scales_edge.cli import app

require_installed_library()
runner = CliRunner()


def cli(*args) -> tuple[int, str]:
    res = runner.invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def one_error_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A checkpoint, its export, and two photos."""
    d = tmp_path_factory.mktemp("files")
    torch.manual_seed(0)
    ckpt = save_checkpoint(build_model("srresnet", scale=2, num_feat=16, num_block=1), d / "m.pth")
    code, out = cli("export", ckpt, d / "m.onnx", "--no-simplify")
    assert code == 0, out
    photos = d / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        cv2.imwrite(str(photos / f"{name}.png"), (rng.random((40, 48, 3)) * 255).astype(np.uint8))
    return d, ckpt, d / "m.onnx", photos


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ---------------------------------------------------------------------------- outputs = inputs


def test_export_never_replaces_its_checkpoint(work, tmp_path):
    d, ckpt, _, _ = work
    before = digest(ckpt)
    code, out = cli("export", ckpt, ckpt)
    assert code == 2 and "is an input; refusing to overwrite it" in one_error_line(out)
    link = tmp_path / "link.pth"
    os.link(ckpt, link)  # another name for the same file
    code, out = cli("export", ckpt, link, "--overwrite")
    assert code == 2 and f"the same file as the input {ckpt}" in one_error_line(out)
    sym = tmp_path / "sym.onnx"
    sym.symlink_to(ckpt)
    code, out = cli("export", ckpt, sym, "--overwrite")
    assert code == 2 and "refusing to overwrite it" in out
    assert digest(ckpt) == before


def test_export_replaces_a_file_only_with_overwrite(work, tmp_path):
    _, ckpt, _, _ = work
    out_path = tmp_path / "x.onnx"
    out_path.write_bytes(b"precious")
    code, out = cli("export", ckpt, out_path, "--no-simplify")
    assert code == 2 and "exists; pass --overwrite to replace it" in one_error_line(out)
    assert out_path.read_bytes() == b"precious"
    code, out = cli("export", ckpt, out_path, "--no-simplify", "--overwrite")
    assert code == 0, out
    onnx.checker.check_model(onnx.load(str(out_path)))
    assert leftovers(tmp_path) == []
    assert "--overwrite" in cli("export", "--help")[1]


def test_reports_never_replace_an_input(work, tmp_path):
    d, ckpt, model, photos = work
    before = {p: digest(p) for p in (ckpt, model, *photos.iterdir())}
    for args in (
        ("info", model, "--json", model),
        ("bench", model, "--size", "16x16", "--runs", "1", "--warmup", "0", "--json", model),
        ("validate", model, "--ckpt", ckpt, "--json", ckpt),
        ("validate", model, "--images", photos, "--json", photos / "a.png"),
    ):
        code, out = cli(*args)
        assert code == 2 and "refusing to overwrite it" in one_error_line(out), args
    # validate --save-dir writes <stem>_sr.png and <stem>_compare.png: not over an input
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    for name in ("a.png", "a_sr.png"):
        (crowded / name).write_bytes((photos / "a.png").read_bytes())
    saved = {p.name: digest(p) for p in crowded.iterdir()}
    code, out = cli("validate", model, "--images", crowded, "--save-dir", crowded, "--threads", "1")
    assert code == 2 and "a_sr.png is one of the input images" in one_error_line(out)
    assert {p.name: digest(p) for p in crowded.iterdir()} == saved
    assert {p: digest(p) for p in before} == before


# ---------------------------------------------------------------------------- interrupted writes


def run_limited(args, fsize: int | None = None, cwd="/", timeout=300) -> subprocess.CompletedProcess:
    """``python -m scales_edge ARGS`` with files limited to ``fsize`` bytes (run from ``/`` so the
    source tree does not shadow the installed package)."""

    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "scales_edge", *map(str, args)], preexec_fn=limit, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_a_write_cut_short_keeps_the_old_file(work, tmp_path):
    """Under a file-size limit smaller than what each command writes, the command fails with one
    line (exit 2) and the file it was replacing is unchanged, with no temporary file left."""
    _, ckpt, model, photos = work
    old_onnx = tmp_path / "old.onnx"
    old_onnx.write_bytes(model.read_bytes())
    old_json = tmp_path / "info.json"
    old_json.write_text('{"old": true}')
    old_png = tmp_path / "a_x2.png"
    old_png.write_bytes((photos / "a.png").read_bytes())
    jobs = [
        (["export", ckpt, old_onnx, "--no-simplify", "--overwrite"], old_onnx, 20_000),
        (["info", model, "--json", old_json], old_json, 40),
        (["upscale", photos / "a.png", old_png, "-m", model, "--overwrite", "--threads", "1"], old_png, 2_000),
    ]
    for args, target, fsize in jobs:
        before = digest(target)
        res = run_limited(args, fsize)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert "File too large" in one_error_line(res.stderr), res.stderr
        assert digest(target) == before, args
        assert leftovers(tmp_path) == [], args


def _kill_export_while_writing(ckpt: Path, target: Path, delay: float) -> bool:
    """Start an export over ``target``, and SIGKILL it ``delay`` seconds after its temporary file
    appears (the write has begun). False if the export finished first."""
    prefix = f".{target.name}."
    earlier = set(os.listdir(target.parent))  # temporary files earlier kills left
    proc = subprocess.Popen([sys.executable, "-m", "scales_edge", "export", str(ckpt), str(target), "--overwrite",
                             "--no-simplify"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    while proc.poll() is None:
        if any(n.startswith(prefix) and n not in earlier for n in os.listdir(target.parent)):
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0002)
    return False


def _write_old_model(model: Path, target: Path) -> str:
    """A valid model that differs from what the export writes (the export is deterministic)."""
    proto = onnx.load(str(model))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "test.old", "1"
    onnx.save(proto, target)
    return digest(target)


def _old_or_complete(target: Path, old: str) -> str:
    if digest(target) == old:
        return "old"
    onnx.checker.check_model(onnx.load(str(target)))  # a whole model, or this raises
    return "new"


def test_a_killed_export_leaves_the_old_file_or_the_new_one(work, tmp_path):
    _, ckpt, model, _ = work
    target = tmp_path / "m.onnx"
    old = _write_old_model(model, target)
    _kill_export_while_writing(ckpt, target, 0.0)
    assert _old_or_complete(target, old) == "old"  # killed mid-write: the old file
    assert all(n.startswith(".m.onnx.") for n in leftovers(tmp_path)), leftovers(tmp_path)


@pytest.mark.fault_sweep
def test_kill_sweep_over_an_export(work, tmp_path):
    """SIGKILL at 8 moments from the start of the write to after it: the target is always the old
    file or a complete new model."""
    _, ckpt, model, _ = work
    target = tmp_path / "m.onnx"
    old = _write_old_model(model, target)
    seen = []
    for delay in (0.0, 0.001, 0.005, 0.02, 0.1, 0.3, 1.0, 2.0):
        killed = _kill_export_while_writing(ckpt, target, delay)
        seen.append(_old_or_complete(target, old) + ("" if killed else " (finished)"))
        if not seen[-1].startswith("old"):
            _write_old_model(model, target)
    print(f"\n[kill sweep] outcomes by delay after the write began: {seen}")
    assert all(n.startswith(".m.onnx.") for n in leftovers(tmp_path))


# ---------------------------------------------------------------------------- CLI edges


def test_export_opset_outside_the_range_is_a_clean_error(work, tmp_path):
    _, ckpt, _, _ = work
    for opset in (99, 1):
        code, out = cli("export", ckpt, tmp_path / "o.onnx", "--opset", opset)
        assert code == 2 and f"ONNX opset {opset} is not supported: the export writes opsets 11 to" in one_error_line(out)


def test_sizes_larger_than_memory_are_refused_before_allocating(work):
    _, ckpt, model, _ = work
    for args in (("bench", model, "--size", "100000x100000"),
                 ("validate", model, "--ckpt", ckpt, "--size", "100000x100000")):
        t0 = time.perf_counter()
        code, out = cli(*args)
        assert code == 2 and "GiB" in one_error_line(out) and "choose a smaller size" in out, out
        assert time.perf_counter() - t0 < 30


def test_metadata_the_runtime_would_misuse_is_refused(work, tmp_path):
    _, _, model, photos = work
    for key, value in (("scales_edge.scale", "-4"), ("scales_edge.scale", "x4"), ("scales_edge.color", "BGR"),
                       ("scales_edge.tail", "int4")):
        proto = onnx.load(str(model))
        for p in proto.metadata_props:
            if p.key == key:
                p.value = value
        bad = tmp_path / "bad.onnx"
        onnx.save(proto, bad)
        for args in (("upscale", photos / "a.png", tmp_path / "o.png", "-m", bad, "--threads", "1"),
                     ("bench", bad, "--size", "16x16", "--runs", "1"), ("info", bad)):
            code, out = cli(*args)
            assert code == 2 and f"metadata {key} = {value!r} is invalid" in one_error_line(out), (args, out)


def test_folder_upscale_goes_on_past_a_bad_image(work, tmp_path):
    _, _, model, photos = work
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((photos / name).read_bytes())
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    out_dir = tmp_path / "out"
    code, out = cli("upscale", folder, out_dir, "-m", model, "--threads", "1")
    assert code == 2
    assert "1 of 3 image(s) failed; " in one_error_line(out) and "broken.png" in one_error_line(out)
    assert sorted(p.name for p in out_dir.iterdir()) == ["a_x2.png", "b_x2.png"]
