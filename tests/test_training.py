"""Tests for scales_edge.training and the train / evaluate CLI commands, on a tiny photo folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from typer.testing import CliRunner

from scales_edge import CheckpointError, ConfigError, load_checkpoint
from scales_edge.cli import app
from scales_edge.data import imread, list_images, make_lr, modcrop
from scales_edge.training import PatchDataset, TrainConfig, train

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
MODEL = dict(scale=2, num_feat=8, num_block=1)


def make_cfg(photos: Path, out: Path, **over) -> TrainConfig:
    kw = dict(
        arch="srresnet",
        train_dir=str(photos),
        out_dir=str(out),
        model=dict(MODEL),
        patch_size=12,
        batch_size=4,
        iters=4,
        lr=1e-3,
        save_every=1000,
        val_every=1000,
        repeat=8,
        seed=0,
        threads=1,
    )
    kw.update(over)
    return TrainConfig(**kw)


def fixed_batch(photos: Path, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every tiny photo, whole, as one LR/HR batch (float on [0, 1], NCHW)."""
    lrs, hrs = [], []
    for p in list_images(photos):
        hr = modcrop(imread(p), scale)
        lrs.append(make_lr(hr, scale))
        hrs.append(hr)
    to_t = lambda a: torch.from_numpy(np.stack(a).astype(np.float32) / 255.0).permute(0, 3, 1, 2)  # noqa: E731
    return to_t(lrs), to_t(hrs)


def l1(model, lr: torch.Tensor, hr: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model.eval()(lr) - hr).abs().mean())


# ----------------------------------------------------------------------------- training


def test_training_reduces_the_loss(tiny_photo_dir, tmp_path):
    before_dir, after_dir = tmp_path / "init", tmp_path / "trained"
    res0 = train(make_cfg(tiny_photo_dir, before_dir, iters=0))
    assert res0["iters"] == 0
    calls = []
    res = train(make_cfg(tiny_photo_dir, after_dir, iters=30), progress=lambda *a: calls.append(a))
    assert res["iters"] == 30 and res["world_size"] == 1 and np.isfinite(res["loss"])
    assert [c[0] for c in calls] == list(range(1, 31))
    assert all(c[1] == 30 for c in calls)

    assert (after_dir / "latest.pth").is_file() and (after_dir / "model.pth").is_file()
    before = load_checkpoint(before_dir / "model.pth")
    after = load_checkpoint(after_dir / "model.pth")
    assert after.config == {**before.config} and after.config["num_feat"] == 8
    lr, hr = fixed_batch(tiny_photo_dir, 2)
    loss_before, loss_after = l1(before, lr, hr), l1(after, lr, hr)
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)

    # model.pth is weights only, latest.pth carries the training state
    assert "train" not in torch.load(after_dir / "model.pth", weights_only=True)
    latest = torch.load(after_dir / "latest.pth", weights_only=True)
    assert latest["train"]["iter"] == 30
    assert all(torch.equal(latest["params"][k], v) for k, v in after.state_dict().items())


def test_resume_continues_iteration_and_optimizer(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=4))
    first = torch.load(out / "latest.pth", weights_only=True)
    assert first["train"]["iter"] == 4

    calls = []
    res = train(make_cfg(tiny_photo_dir, out, iters=6), progress=lambda *a: calls.append(a[0]))
    assert calls == [5, 6]  # only the two new iterations ran
    assert res["iters"] == 6
    latest = torch.load(out / "latest.pth", weights_only=True)
    assert latest["train"]["iter"] == 6
    steps = {float(s["step"]) for s in latest["train"]["optimizer"]["state"].values()}
    assert steps == {6.0}  # Adam's step counters went on from 4 (a fresh optimizer would say 2)
    assert latest["train"]["scheduler"]["last_epoch"] == 6
    assert not all(torch.equal(first["params"][k], latest["params"][k]) for k in first["params"])

    # resuming a finished run trains nothing and writes back exactly the stored weights
    calls.clear()
    train(make_cfg(tiny_photo_dir, out, iters=6), progress=lambda *a: calls.append(a[0]))
    assert calls == []
    final = torch.load(out / "model.pth", weights_only=True)["params"]
    assert all(torch.equal(final[k], latest["params"][k]) for k in final)


def test_resume_false_starts_over(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=3))
    calls = []
    train(make_cfg(tiny_photo_dir, out, iters=2, resume=False), progress=lambda *a: calls.append(a[0]))
    assert calls == [1, 2]
    assert torch.load(out / "latest.pth", weights_only=True)["train"]["iter"] == 2


def test_resume_with_another_config_is_refused(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=1))
    with pytest.raises(CheckpointError, match="was trained with"):
        train(make_cfg(tiny_photo_dir, out, iters=2, model=dict(MODEL, num_feat=12)))


# ----------------------------------------------------------------------------- patches


def _undo_augment(img: np.ndarray, flip_h: bool, flip_v: bool, rot: bool) -> np.ndarray:
    """Inverse of: flip left-right, then flip up-down, then transpose (H <-> W)."""
    if rot:
        img = img.transpose(1, 0, 2)
    if flip_v:
        img = img[::-1]
    if flip_h:
        img = img[:, ::-1]
    return img


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("scale,patch", [(2, 8), (3, 5), (4, 4)])
def test_patch_dataset_lr_hr_aligned(tiny_photo_dir, scale, patch):
    paths = list_images(tiny_photo_dir)
    torch.manual_seed(scale)
    ds = PatchDataset(paths, scale, patch, repeat=6)
    assert len(ds) == 6 * len(paths)
    full = []
    for p in paths:
        hr = modcrop(imread(p), scale)
        full.append((make_lr(hr, scale), hr))
    combos = set()
    for index in range(len(ds)):
        lr_t, hr_t = ds[index]
        assert lr_t.dtype == torch.float32 and hr_t.dtype == torch.float32
        assert lr_t.shape == (3, patch, patch) and hr_t.shape == (3, patch * scale, patch * scale)
        lr_p, hr_p = _to_uint8(lr_t), _to_uint8(hr_t)
        lr_full, hr_full = full[index % len(paths)]
        windows = sliding_window_view(lr_full, (patch, patch, 3))[:, :, 0]
        found = None
        for combo in [(a, b, c) for a in (0, 1) for b in (0, 1) for c in (0, 1)]:
            lr_src = _undo_augment(lr_p, *combo)
            hr_src = _undo_augment(hr_p, *combo)
            ys, xs = np.nonzero((windows == lr_src).all(axis=(2, 3, 4)))
            for y, x in zip(ys, xs):
                region = hr_full[y * scale : (y + patch) * scale, x * scale : (x + patch) * scale]
                if np.array_equal(region, hr_src):
                    found = combo
                    break
            if found:
                break
        assert found is not None, f"sample {index}: LR and HR patches are not aligned"
        combos.add(found)
    assert len(combos) > 1  # the flips / rotations are applied


def test_patch_dataset_rejects_small_images(tiny_photo_dir):
    with pytest.raises(ConfigError, match="smaller than an HR patch"):
        PatchDataset(list_images(tiny_photo_dir), 2, 25)  # HR patch 50 > 48


# ----------------------------------------------------------------------------- distributed


def test_ddp_two_processes_with_gloo(tiny_photo_dir, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "scales_edge", "train", str(tiny_photo_dir), "--out", str(out),
        "--scale", "2", "--num-feat", "8", "--num-block", "1", "--iters", "3",
        "--batch-size", "2", "--patch-size", "12", "--repeat", "4", "--threads", "1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert reports, proc.stdout
    assert all(r["world_size"] == 2 and r["iters"] == 3 for r in reports)
    model = load_checkpoint(out / "model.pth")
    assert model.config["scale"] == 2 and model.config["num_feat"] == 8
    with torch.no_grad():
        y = model(torch.rand(1, 3, 5, 7))
    assert y.shape == (1, 3, 10, 14) and torch.isfinite(y).all()
    assert torch.load(out / "latest.pth", weights_only=True)["train"]["iter"] == 3


# ----------------------------------------------------------------------------- CLI


def test_cli_train_and_evaluate(tiny_photo_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(
        app,
        ["train", str(tiny_photo_dir), "--out", str(out), "--scale", "2", "--num-feat", "8",
         "--num-block", "1", "--iters", "2", "--batch-size", "2", "--patch-size", "12",
         "--repeat", "4", "--threads", "1", "--set", "channel=false"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["iters"] == 2 and report["world_size"] == 1
    model = load_checkpoint(out / "model.pth")
    assert model.config["channel"] is False and model.config["num_block"] == 1

    json_out = tmp_path / "eval.json"
    res = runner.invoke(app, ["evaluate", str(out / "model.pth"), "--images", str(tiny_photo_dir), "--json", str(json_out)])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.stdout and "bicubic" in res.stdout and "srresnet" in res.stdout
    data = json.loads(json_out.read_text())
    assert {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"} <= set(data)
    assert data["images"] == 2
    for k in ("psnr", "bicubic_psnr"):
        assert np.isfinite(data[k]) and data[k] > 10
    for k in ("ssim", "bicubic_ssim"):
        assert 0 < data[k] <= 1
    assert f"{data['bicubic_psnr']:.2f}" in res.stdout and f"{data['psnr']:.2f}" in res.stdout


def _error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if "error" in line.lower()]


def test_cli_unknown_arch_is_a_one_line_error(tiny_photo_dir, tmp_path, monkeypatch):
    # a wide console, so that this test is about the error path; wrapping is test_cli_long_error_...
    monkeypatch.setenv("COLUMNS", "200")
    res = CliRunner().invoke(app, ["train", str(tiny_photo_dir), "--out", str(tmp_path / "x"), "--arch", "nope", "--iters", "2"])
    assert res.exit_code == 2
    errors = _error_lines(res)
    assert len(errors) == 1, res.output
    assert errors[0].startswith("error: unknown architecture 'nope'; known: ")
    assert "srresnet" in errors[0] and "rdn" in errors[0]
    assert "Traceback" not in res.output
    assert not (tmp_path / "x" / "model.pth").exists()


def test_cli_long_error_stays_on_one_line(tiny_photo_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    res = CliRunner().invoke(
        app, ["train", str(tiny_photo_dir), "--out", str(tmp_path / "x"), "--set", "some_unknown_option=1"]
    )
    assert res.exit_code == 2
    errors = _error_lines(res)
    assert len(errors) == 1, res.output
    assert "some_unknown_option" in errors[0] and errors[0].rstrip().endswith("binary_scope"), res.output


def test_cli_evaluate_missing_checkpoint_is_an_error(tiny_photo_dir, tmp_path):
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "none.pth"), "--images", str(tiny_photo_dir)])
    assert res.exit_code == 2
    text = res.output
    assert "no such checkpoint" in text and "Traceback" not in res.output
