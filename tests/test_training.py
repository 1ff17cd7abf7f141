"""Training (issue 15): the loop, resume, logs, devices, several processes, bad input; on a tiny
photo folder and models of a few thousand parameters."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from typer.testing import CliRunner

from scales_edge import CheckpointError, ConfigError, build_model, load_checkpoint
from scales_edge.cli import app
from scales_edge.data import imread, imwrite, list_images, make_lr, modcrop
from scales_edge.training import PatchDataset, RunLog, ShardedSampler, TrainConfig, train
from scales_edge.training.distributed import Processes, resolve_device
from scales_edge.training.plot import read_metrics

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
MODEL = dict(scale=2, num_feat=8, num_block=1)
# The CLI flags of the same tiny run.
TINY = ["--scale", "2", "--num-feat", "8", "--num-block", "1", "--batch-size", "4", "--patch-size", "12",
        "--repeat", "8", "--threads", "1", "--lr", "1e-3"]  # fmt: skip


def make_cfg(photos: Path, out: Path, **over) -> TrainConfig:
    kw = dict(
        arch="srresnet", train_dir=str(photos), out_dir=str(out), model=dict(MODEL), patch_size=12, batch_size=4,
        iters=4, lr=1e-3, save_every=1000, val_every=1000, log_every=1000, repeat=8, seed=0, threads=1,
    )  # fmt: skip
    kw.update(over)
    return TrainConfig(**kw)


def quiet() -> RunLog:
    return RunLog(console=io.StringIO(), tty=False)


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


def params_of(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["params"]


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def error_lines(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.startswith("error:")]


# ----------------------------------------------------------------------------- the loop


def test_training_reduces_the_loss(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    res = train(make_cfg(tiny_photo_dir, out, iters=30), quiet())
    assert res["iters"] == 30 and res["world_size"] == 1 and res["device"] == "cpu" and np.isfinite(res["loss"])
    torch.manual_seed(0)  # the initial weights of the run: seed, then build
    before = build_model("srresnet", **MODEL)
    after = load_checkpoint(out / "model.pth")
    assert after.config == before.config
    lr, hr = fixed_batch(tiny_photo_dir, 2)
    loss_before, loss_after = l1(before, lr, hr), l1(after, lr, hr)
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)
    # model.pth is weights only, latest.pth carries the training state
    assert "train" not in torch.load(out / "model.pth", weights_only=True)
    latest = torch.load(out / "latest.pth", weights_only=True)
    assert latest["train"]["iter"] == 30 and latest["train"]["train_config"]["iters"] == 30
    assert all(torch.equal(latest["params"][k], v) for k, v in after.state_dict().items())


def test_resume_continues_exactly_where_the_run_stopped(tiny_photo_dir, tmp_path):
    """3 iterations, then a resume to 7: the same weights and optimizer state, bit for bit, as 7 in one
    go (the patches depend on seed, epoch and index only; the epoch position is stored)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_cfg(tiny_photo_dir, straight, iters=7), quiet())
    train(make_cfg(tiny_photo_dir, split, iters=3), quiet())
    first = torch.load(split / "latest.pth", weights_only=True)["train"]
    assert (first["iter"], first["epoch"], first["epoch_samples"]) == (3, 0, 12)  # 4 iterations per epoch
    log = quiet()
    train(make_cfg(tiny_photo_dir, split, iters=7), log)
    assert "resuming from" in log.console.getvalue() and "iteration 3 of 7, epoch 1 (3 of 4 iterations into it)" in log.console.getvalue()
    a, b = params_of(straight / "model.pth"), params_of(split / "model.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(straight / "latest.pth", weights_only=True)["train"]["optimizer"]["state"]
    sb = torch.load(split / "latest.pth", weights_only=True)["train"]["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) and float(sb[i]["step"]) == 7 for i in sa)


def test_a_changed_run_option_is_applied_and_recorded(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=2, lr_step=3), quiet())
    log = quiet()
    train(make_cfg(tiny_photo_dir, out, iters=5, lr=4e-4, lr_step=3), log)
    text = log.console.getvalue()
    assert "changed on resume, applied from iteration 2 and recorded in latest.pth: --iters 2 -> 5; --lr 0.001 -> 0.0004" in text
    t = torch.load(out / "latest.pth", weights_only=True)["train"]
    assert t["train_config"]["lr"] == 4e-4 and t["train_config"]["iters"] == 5
    # StepLR's closed form with the new base rate: 5 steps, halved once at 3
    assert t["optimizer"]["param_groups"][0]["lr"] == pytest.approx(4e-4 * 0.5)
    assert t["scheduler"]["base_lrs"] == [4e-4] and t["scheduler"]["last_epoch"] == 5
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    starts = [e for e in events if e["event"] == "start"]
    assert [s["resumed"] for s in starts] == [False, True] and starts[1]["changed"]["lr"] == [1e-3, 4e-4]


def test_the_model_cannot_change_on_resume(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=1), quiet())
    before = (out / "latest.pth").read_bytes()
    with pytest.raises(ConfigError, match=r"holds a run of another model: num_feat=12 \(the run's: 8\)"):
        train(make_cfg(tiny_photo_dir, out, iters=2, model=dict(MODEL, num_feat=12)), quiet())
    res = cli("train", "--out", str(out), "--iters", "2", "--arch", "edsr")
    assert res.exit_code == 2 and error_lines(res) == [
        f"error: {out} holds a run of srresnet, not edsr; the model cannot change when resuming: drop --arch, give "
        "another --out, or --force to start over"
    ], res.output
    assert (out / "latest.pth").read_bytes() == before


def test_a_finished_run_is_not_rerun_without_force(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=2), quiet())
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ConfigError, match=r"the run is finished \(latest.pth at iteration 2 of 2 and model.pth written\)"):
        train(make_cfg(tiny_photo_dir, out, iters=2), quiet())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    log = quiet()
    train(make_cfg(tiny_photo_dir, out, iters=1, force=True), log)  # starts over
    assert torch.load(out / "latest.pth", weights_only=True)["train"]["iter"] == 1
    assert "resuming" not in log.console.getvalue()
    assert [json.loads(x)["event"] for x in (out / "metrics.jsonl").read_text().splitlines()][0] == "start"
    assert (out / "train.log").read_text().count("model: srresnet") == 1  # the logs started over too


def test_a_folder_with_a_foreign_model_is_not_overwritten(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.pth").write_bytes(b"someone's model")
    with pytest.raises(ConfigError, match="holds a model.pth but no latest.pth"):
        train(make_cfg(tiny_photo_dir, out), quiet())
    (out / "latest.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="latest.pth: cannot read"):
        train(make_cfg(tiny_photo_dir, out), quiet())
    assert sorted(p.name for p in out.iterdir()) == ["latest.pth", "model.pth"]


# ----------------------------------------------------------------------------- logs


def test_logs_without_a_terminal(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    log = quiet()
    res = train(make_cfg(tiny_photo_dir, out, iters=6, log_every=2, val_every=3, val_dir=str(tiny_photo_dir)), log)
    text = log.console.getvalue()
    for line in ("model: srresnet x2 (num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, binary=scales", "parameters",
                 "data: 2 image(s) from", "LR patch 12 (HR 24), 8 per image per epoch: 16 patches, 4 iterations per epoch",
                 "batch 4; device cpu, 1 process; mixed precision off", "schedule: 6 iterations (1.5 epochs)",
                 "finished: iteration 6"):  # fmt: skip
        assert line in text, (line, text)
    periodic = [line for line in text.splitlines() if line.startswith("it ")]
    assert [line.split()[1] for line in periodic] == ["2/6", "4/6", "6/6"]
    assert all(" loss " in line and " lr 1.000e-03 " in line and " it/s " in line and " ETA " in line for line in periodic)
    assert text.count("val it ") == 2 and f"PSNR {res['val']['psnr']:.2f} dB" in text
    logged = (out / "train.log").read_text()
    assert all(line in logged for line in text.splitlines() if not line.startswith("reading"))
    events = read_metrics(out)
    assert [p["iter"] for p in events["train"]] == [2, 4, 6] and [p["iter"] for p in events["val"]] == [3, 6]
    assert events["train"][-1]["loss"] == pytest.approx(res["loss"])


def test_on_a_terminal_the_periodic_lines_go_to_train_log_only(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    log = RunLog(console=io.StringIO(), tty=True)
    train(make_cfg(tiny_photo_dir, out, iters=4, log_every=2), log)
    assert "it 2/4" not in log.console.getvalue() and "model: srresnet" in log.console.getvalue()
    assert "it 2/4" in (out / "train.log").read_text()


def test_plot_draws_the_curves_and_drops_redone_points(tiny_photo_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    train(make_cfg(tiny_photo_dir, out, iters=4, log_every=1, val_every=2, save_every=2, val_dir=str(tiny_photo_dir)), quiet())
    # a crash after iteration 4 whose last save was at 2: the resume redoes 3 and 4
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"event": "start", "iter": 2}) + "\n")
        fh.write(json.dumps({"event": "train", "iter": 3, "loss": 0.5}) + "\n")
        fh.write('{"event": "train", "iter": 4, "lo')  # cut in the middle of a write
    data = read_metrics(out)
    assert [p["iter"] for p in data["train"]] == [1, 2, 3] and data["train"][2]["loss"] == 0.5
    assert [p["iter"] for p in data["val"]] == [2]
    res = cli("plot", str(out))
    assert res.exit_code == 0, res.output
    png = out / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(png).shape[1] == 1200


def test_plot_without_matplotlib_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"event": "train", "iter": 1, "loss": 0.1}) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = cli("plot", str(tmp_path))
    assert res.exit_code == 2 and error_lines(res) == ["error: plotting needs matplotlib: pip install matplotlib"]
    assert not (tmp_path / "curves.png").exists()


# ----------------------------------------------------------------------------- devices, precision


def test_device_resolution_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu") and resolve_device("cpu") == torch.device("cpu")
    for spec in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=rf"--device {spec}: CUDA is not available"):
            resolve_device(spec)


def test_device_resolution_with_gpus(monkeypatch):
    """The torchrun mapping, with CUDA faked present (no tensor touches a GPU here)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("auto", local_rank=3, world=4) == torch.device("cuda", 3)
    assert resolve_device("cuda", local_rank=2, world=4) == torch.device("cuda", 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="names one GPU, but torchrun started 4 processes"):
        resolve_device("cuda:1", local_rank=0, world=4)
    with pytest.raises(ConfigError, match="GPU 5 does not exist"):
        resolve_device("cuda:5")


def test_amp_trains_with_float32_weights(tiny_photo_dir, tmp_path):
    for amp in ("bf16", "fp16"):
        out = tmp_path / amp
        res = train(make_cfg(tiny_photo_dir, out, iters=3, amp=amp, device="cpu"), quiet())
        assert np.isfinite(res["loss"])
        t = torch.load(out / "latest.pth", weights_only=True)
        assert all(v.dtype == torch.float32 for v in t["params"].values() if v.is_floating_point())
        assert (t["train"]["scaler"] is not None) == (amp == "fp16")


def _sign_inputs(monkeypatch):
    """Record the input of every sign taken in the binary layers (activations and weights)."""
    import scales_edge.nn.layers as layers

    seen: list[torch.Tensor] = []
    real = layers.sign_ste

    def spy(v, clip=1.0):
        seen.append(v.detach().float().clone())
        return real(v, clip)

    monkeypatch.setattr(layers, "sign_ste", spy)
    return seen


@pytest.mark.parametrize("kind", ["scales-conv", "e2fif-conv", "scales-linear", "bibert-linear"])
def test_autocast_bf16_binarizes_a_fixed_input_like_fp32(monkeypatch, kind):
    """Same input, same layer: under CPU bf16 autocast every sign (activations and weights) is the
    fp32 one; the binary product differs only by bf16 rounding of its sums."""
    from scales_edge.nn import BinarySpec

    torch.manual_seed(0)
    binary, shape = kind.split("-")
    spec = BinarySpec({"e2fif": "e2fif", "bibert": "bibert"}.get(binary, "scales"))
    layer = (spec.conv(16, 16) if shape == "conv" else spec.linear(16, 24)).eval()
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(2, 16, 9, 9) if shape == "conv" else torch.randn(2, 30, 16)
    seen = _sign_inputs(monkeypatch)
    with torch.no_grad():
        y32 = layer(x)
        fp32 = [s >= 0 for s in seen]
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y16 = layer(x)
    assert len(seen) == len(fp32) == 2
    assert all(torch.equal(a, s >= 0) for a, s in zip(fp32, seen))
    assert torch.allclose(y16.float(), y32, rtol=2e-2, atol=2e-2 * float(y32.abs().max()))


def test_autocast_bf16_on_a_whole_model_flips_only_activations_at_their_threshold(monkeypatch):
    """On a whole model the FP layers' bf16 rounding reaches the binary layers' inputs: weight signs
    are all the same; activation signs flip only where the value sits within bf16 rounding of its
    threshold (documented in docs/training.md with the measured share)."""
    from scales_edge.demo import DEMO_CHECKPOINT

    model = load_checkpoint(DEMO_CHECKPOINT)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 24, 24)
    seen = _sign_inputs(monkeypatch)
    with torch.no_grad():
        model(x)
        ref = list(seen)
        seen.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
    acts, weights = ref[0::2], ref[1::2]  # each binary conv: sign(x - beta), then sign(W)
    assert all(torch.equal(w >= 0, s >= 0) for w, s in zip(weights, seen[1::2]))
    flips = total = 0
    for layer, (a, b) in enumerate(zip(acts, seen[0::2])):
        flipped = (a >= 0) != (b >= 0)
        flips, total = flips + int(flipped.sum()), total + a.numel()
        if layer == 0 and flipped.any():  # fed by conv_first's bf16 output directly: only rounding
            assert float(a[flipped].abs().max()) <= 2**-7 * float(a.abs().max())
    assert 0 < flips / total < 0.03, flips / total


# ----------------------------------------------------------------------------- patches and sharding


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
    ds = PatchDataset(paths, scale, patch, repeat=6, seed=scale)
    assert len(ds) == 6 * len(paths)
    full = [(make_lr(hr, scale), hr) for hr in (modcrop(imread(p), scale) for p in paths)]
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


def test_a_sample_depends_on_seed_epoch_and_index_only(tiny_photo_dir):
    paths = list_images(tiny_photo_dir)
    a, b = PatchDataset(paths, 2, 8, seed=1), PatchDataset(paths, 2, 8, seed=1)
    torch.manual_seed(123)  # the global random state plays no part
    assert all(torch.equal(x, y) for x, y in zip(a[(3, 5)], b[(3, 5)]))
    assert not torch.equal(a[(3, 5)][0], a[(4, 5)][0])  # another epoch, another crop


def test_sharded_sampler_splits_each_global_batch_across_processes():
    n, batch = 23, 6
    one = list(ShardedSampler(n, batch, 0, 1, seed=4))
    assert len(one) == 18 and len({i for _, i in one}) == 18  # whole batches only, no repeats
    shards = [list(ShardedSampler(n, batch, r, 3, seed=4)) for r in range(3)]
    for k in range(3):  # batch k of one process = the union of batch k of the three
        together = sorted(i for s in shards for i in s[k * 2 : (k + 1) * 2])
        assert together == sorted(one[k * batch : (k + 1) * batch])
    s = ShardedSampler(n, batch, 0, 1, seed=4)
    s.set_epoch(1)
    assert list(s) != [(1, i) for _, i in one]  # a new order per epoch
    s.set_epoch(0, start=12)
    assert list(s) == one[12:]  # a resume inside the epoch
    with pytest.raises(ConfigError, match="does not divide among 4"):
        ShardedSampler(n, batch, 0, 4)


def test_lr_dir_images_are_used_and_checked(tiny_photo_dir, tmp_path):
    lr_dir = tmp_path / "X2"
    lr_dir.mkdir()
    paths = list_images(tiny_photo_dir)
    for p in paths:  # DIV2K's naming: 0001.png -> 0001x2.png
        imwrite(lr_dir / f"{p.stem}x2.png", make_lr(modcrop(imread(p), 2), 2))
    made, given = PatchDataset(paths, 2, 8), PatchDataset(paths, 2, 8, lr_dir=lr_dir)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(made.pairs, given.pairs))
    imwrite(lr_dir / f"{paths[0].stem}x2.png", np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"10x10 is not .* / 2 = 24x24"):
        PatchDataset(paths, 2, 8, lr_dir=lr_dir)
    (lr_dir / f"{paths[0].stem}x2.png").unlink()
    with pytest.raises(ConfigError, match=f"no LR image for {paths[0].name}"):
        PatchDataset(paths, 2, 8, lr_dir=lr_dir)


# ----------------------------------------------------------------------------- bad input (CLI)


def _bad_image_dir(tmp_path, kind):
    d = tmp_path / kind
    d.mkdir()
    if kind == "unreadable":
        (d / "a.png").write_bytes(b"not a png")
    elif kind == "small":
        imwrite(d / "a.png", np.zeros((20, 20, 3), np.uint8))
    return d


@pytest.mark.parametrize(
    "args,message",
    [
        (["--patch-size", "0"], "--patch-size must be a positive integer, got 0"),
        (["--iters", "-5"], "--iters must be a positive integer, got -5"),
        (["--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
        (["--lr", "-1"], "--lr must be a positive number, got -1.0"),
        (["--amp", "fp8"], "--amp must be one of off, bf16, fp16, got 'fp8'"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (["--device", "cuda"], "--device cuda: CUDA is not available"),
        (["--num-block", "-1"], "srresnet: num_block must be 0 or a positive integer, got -1"),
        (["--scale", "5"], "srresnet: scale must be one of 2, 3, 4, not 5"),
        (["--repeat", "1", "--batch-size", "8"], "2 image(s) x --repeat 1 = 2 patches per epoch, fewer than one batch of 8"),
        (["--patch-size", "30"], "48x48 is smaller than an HR patch of 60 (--patch-size 30 at x2)"),
        (["DIR:empty"], "contains no image files"),
        (["DIR:unreadable"], "a.png"),
        (["DIR:small"], "20x20 is smaller than an HR patch of 24"),
        (["DIR:missing"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tiny_photo_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    photos = tiny_photo_dir
    if args[0].startswith("DIR:"):
        kind = args[0][4:]
        photos = tmp_path / "nope" if kind == "missing" else _bad_image_dir(tmp_path, kind)
        args = []
    out = tmp_path / "run"
    flags = dict(zip(TINY[::2], TINY[1::2]))
    flags.update(dict(zip(args[::2], args[1::2])))
    res = cli("train", str(photos), "--out", str(out), "--iters", flags.pop("--iters", "2"), *[x for kv in flags.items() for x in kv])
    assert res.exit_code == 2, res.output
    errors = error_lines(res)
    assert len(errors) == 1 and message in errors[0], res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_a_world_size_that_does_not_divide_the_batch(tiny_photo_dir, tmp_path, monkeypatch):
    import scales_edge.training.distributed as distributed

    monkeypatch.setattr(distributed, "start", lambda spec: Processes(rank=0, world=3))
    with pytest.raises(ConfigError, match=r"--batch-size 4 is the batch of one iteration over all processes and must divide evenly among the 3 processes \(e.g. 3\)"):
        train(make_cfg(tiny_photo_dir, tmp_path / "run"), quiet())
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- CLI, resume, Ctrl-C


def test_cli_train_resume_without_retyping_and_evaluate(tiny_photo_dir, tmp_path):
    out = tmp_path / "cli"
    res = cli("train", str(tiny_photo_dir), "--out", str(out), "--iters", "2", *TINY, "--set", "channel=false")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["iters"] == 2 and report["world_size"] == 1
    model = load_checkpoint(out / "model.pth")
    assert model.config["channel"] is False and model.config["num_block"] == 1
    # train on: only the run folder and the new total; everything else comes from the run
    res = cli("train", "--out", str(out), "--iters", "3")
    assert res.exit_code == 0, res.output
    assert "resuming from" in res.output and "changed on resume" in res.output and "--iters 2 -> 3" in res.output
    t = torch.load(out / "latest.pth", weights_only=True)
    assert t["train"]["iter"] == 3 and t["config"]["channel"] is False and t["train"]["train_config"]["lr"] == 1e-3
    res = cli("train", "--out", str(out), "--iters", "3")
    assert res.exit_code == 2 and "the run is finished" in error_lines(res)[0]
    res = cli("train", "--out", str(tmp_path / "new"))  # nothing to resume, and no images given
    assert res.exit_code == 2 and error_lines(res) == ["error: give the folder of HR training images (TRAIN_DIR)"]

    json_out = tmp_path / "eval.json"
    res = cli("evaluate", str(out / "model.pth"), "--images", str(tiny_photo_dir), "--json", str(json_out))
    assert res.exit_code == 0, res.output
    data = json.loads(json_out.read_text())
    assert {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"} <= set(data) and data["images"] == 2
    for k in ("psnr", "bicubic_psnr"):
        assert np.isfinite(data[k]) and data[k] > 10
    assert f"{data['bicubic_psnr']:.2f}" in res.stdout and f"{data['psnr']:.2f}" in res.stdout


def test_cli_unknown_arch_is_a_one_line_error(tiny_photo_dir, tmp_path):
    res = cli("train", str(tiny_photo_dir), "--out", str(tmp_path / "x"), "--arch", "nope", "--iters", "2")
    assert res.exit_code == 2
    errors = error_lines(res)
    assert len(errors) == 1 and errors[0].startswith("error: unknown architecture 'nope'; known: "), res.output
    assert not (tmp_path / "x").exists()


def test_cli_long_error_stays_on_one_line(tiny_photo_dir, tmp_path):
    res = CliRunner().invoke(
        app, ["train", str(tiny_photo_dir), "--out", str(tmp_path / "x"), "--set", "some_unknown_option=1"], env={"COLUMNS": "80"}
    )
    assert res.exit_code == 2
    errors = error_lines(res)
    assert len(errors) == 1 and "some_unknown_option" in errors[0] and errors[0].rstrip().endswith("binary_scope"), res.output


def test_cli_evaluate_missing_checkpoint_is_an_error(tiny_photo_dir, tmp_path):
    res = cli("evaluate", str(tmp_path / "none.pth"), "--images", str(tiny_photo_dir))
    assert res.exit_code == 2 and "no such checkpoint" in res.output and "Traceback" not in res.output


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def test_ctrl_c_saves_latest_and_says_so(tiny_photo_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "scales_edge", "train", str(tiny_photo_dir), "--out", str(out), "--iters", "100000",
           "--log-every", "1", *TINY]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not ((out / "train.log").exists() and "it 3/" in (out / "train.log").read_text()):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr[-2000:]
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped at iteration")]
    assert len(stopped) == 1 and f"saved {out / 'latest.pth'}; run the same command to resume" in stopped[0], stderr
    it = int(stopped[0].split()[3])
    assert "Ctrl-C: stopping after this iteration" in stderr
    assert torch.load(out / "latest.pth", weights_only=True)["train"]["iter"] == it >= 3
    assert not (out / "model.pth").exists()


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_on_the_same_global_batch(tiny_photo_dir, tmp_path):
    """torchrun with 2 CPU processes (gloo), batch 4 = 2 x 2, against one process with batch 4: the
    same final weights up to float rounding; only rank 0 prints and writes."""
    args = [str(tiny_photo_dir), "--iters", "4", "--log-every", "2", *TINY]
    one = tmp_path / "one"
    res = cli("train", "--out", str(one), *args)
    assert res.exit_code == 0, res.output

    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "scales_edge", "train", "--out", str(two), *args]  # fmt: skip
    proc = subprocess.run(cmd, env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and reports[0]["world_size"] == 2 and reports[0]["iters"] == 4
    assert proc.stderr.count("model: srresnet") == 1 and proc.stderr.count("finished: iteration 4") == 1
    assert "batch 4 = 2 processes x 2; device cpu on each of 2 processes (gloo)" in proc.stderr
    assert (two / "train.log").read_text().count("it 4/4") == 1
    a, b = params_of(one / "model.pth"), params_of(two / "model.pth")
    assert set(a) == set(b)
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-5), (k, float((a[k] - b[k]).abs().max()))
    # the logged loss is the mean over both processes' halves: the one-process loss
    la = read_metrics(one)["train"][-1]["loss"]
    lb = read_metrics(two)["train"][-1]["loss"]
    assert lb == pytest.approx(la, rel=1e-4)


# ----------------------------------------------------------------------------- --init (warm start)


def test_init_starts_a_paper_scope_run_from_a_body_scope_checkpoint(tiny_photo_dir, tmp_path):
    """--init copies the tensors of matching name and shape (the body, the head and tail, and the
    upsampler convs' latent weights, which keep their names in the paper scope); the paper scope's
    own tensors (thresholds, scales, branches of the upsampler convs) keep their initial values."""
    from scales_edge.checkpoints import save_checkpoint

    torch.manual_seed(5)
    body = build_model("srresnet", binary_scope="body", **MODEL)
    src = save_checkpoint(body, tmp_path / "body.pth")
    out = tmp_path / "run"
    res = cli("train", str(tiny_photo_dir), "--out", str(out), "--iters", "1", "--init", str(src), "--lr", "1e-12",
              *[a for a in TINY if a != "1e-3" and a != "--lr"])
    assert res.exit_code == 0, res.output
    assert "initialized from" in (out / "train.log").read_text()
    trained = params_of(out / "model.pth")
    torch.manual_seed(0)  # the run's seed: the paper-scope model it builds before copying
    fresh = build_model("srresnet", **MODEL).state_dict()
    source = body.state_dict()
    for k, v in trained.items():
        if k in source and source[k].shape == v.shape:
            torch.testing.assert_close(v, source[k], atol=1e-6, rtol=0)  # lr 1e-12: one step moves nothing visible
        else:
            torch.testing.assert_close(v, fresh[k], atol=1e-6, rtol=0)
    assert "upconv1.alpha" in trained and "upconv1.alpha" not in source


def test_init_with_nothing_in_common_or_no_file_is_one_line(tiny_photo_dir, tmp_path):
    other = tmp_path / "o.pth"  # a BasicSR-style file of another network
    torch.save({"params": {"conv_in.weight": torch.zeros(5, 3, 3, 3), "head.bias": torch.zeros(5)}}, other)
    for init, message in ((other, "none of its tensors has the name and shape"), (tmp_path / "missing.pth", "no such checkpoint file")):
        out = tmp_path / f"run_{init.stem}"
        res = cli("train", str(tiny_photo_dir), "--out", str(out), "--iters", "1", "--init", str(init), *TINY)
        assert res.exit_code == 2 and len(error_lines(res)) == 1 and message in error_lines(res)[0], res.output
        assert not (out / "model.pth").exists()
