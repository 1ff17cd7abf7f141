"""Checkpoints from elsewhere (issue 15): the configuration of a BasicSR / plain state dict inferred
from its tensors with --arch alone, for every arch; mismatches named in one line."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from scales_edge import CheckpointError, build_model, list_archs, load_checkpoint, save_checkpoint
from scales_edge.checkpoints import inspect_checkpoint
from scales_edge.models import registry
from scales_edge.models.infer import StateShapes, infer_config

torch.set_num_threads(1)

# Small models with non-default sizes and discrete options, one or more per arch.
CASES = {
    "srresnet": dict(num_feat=16, num_block=3, scale=2, binary="fp"),
    "srresnet-e2fif": dict(num_feat=8, num_block=2, scale=3, binary="e2fif"),
    "srresnet-nochannel": dict(num_feat=8, num_block=2, scale=4, channel=False),
    "edsr": dict(num_feat=8, num_block=2, scale=2, spatial=False),
    "edsr_l": dict(num_feat=8, num_block=2, scale=4, binary="fp"),
    "rdn": dict(num_feat=8, num_block=2, num_layer=3, growth=4, scale=3),
    "rcan": dict(num_feat=16, num_group=2, num_block=2, squeeze_factor=4, scale=2, binary="e2fif"),
    "swinir_light": dict(embed_dim=12, depths=[2, 1], num_heads=[2, 3], window_size=4, scale=3, qkv_bias=False),
    "swinir": dict(embed_dim=12, depths=[2], num_heads=2, window_size=4, scale=2, upsample_feat=16, mlp_ratio=1.5, binary="bibert"),
    "swinir_light-pixelshuffle": dict(embed_dim=12, depths=[1], num_heads=2, window_size=4, upsampler="pixelshuffle", upsample_feat=8),
    "hat_s": dict(embed_dim=24, depths=[2, 1], num_heads=2, window_size=4, scale=4, compress_ratio=6, squeeze_factor=12, binary="fp"),
    "hat": dict(embed_dim=24, depths=[1], num_heads=3, window_size=8, overlap_ratio=0.25, scale=2, spatial=False),
}


def test_every_arch_has_a_case():
    assert {name.split("-")[0] for name in CASES} == set(list_archs())


def _model(case: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(case.split("-")[0], **CASES[case]).eval()
    with torch.no_grad():  # trained-looking weights: thresholds, scales and norms away from their init
        for name, p in model.named_parameters():
            if p.dim() <= 1:
                p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("wrap", ["plain", "params_ema"])
def test_foreign_checkpoint_loads_with_arch_alone(tmp_path, case, wrap):
    model = _model(case)
    arch = case.split("-")[0]
    sd = model.state_dict()
    obj = sd if wrap == "plain" else {"params": _model(case, seed=1).state_dict(), "params_ema": sd}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    ck = inspect_checkpoint(path, arch=arch)
    assert ck.inference is not None
    for key, value in CASES[case].items():  # what the case set is what the tensors said
        got = ck.config[key]
        assert (list(got) if isinstance(got, (list, tuple)) else got) == value or key in ck.inference.defaulted, key
    loaded = ck.build()
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_inference_says_what_the_tensors_cannot_show():
    model = _model("edsr")
    inf = infer_config("edsr", StateShapes.of(model.state_dict()))
    assert inf.from_shapes == {"num_in_ch": 3, "num_feat": 8, "num_out_ch": 3, "num_block": 2}
    assert inf.matched == {"scale": 2, "binary": "scales", "spatial": False, "channel": True, "binary_scope": "body+upsampler"}
    assert set(inf.defaulted) == {"res_scale", "img_range", "lsf", "skip"}
    assert inf.summary() == (
        "from its tensors: num_in_ch=3, num_feat=8, num_out_ch=3, num_block=2, scale=2, binary=scales, "
        "spatial=false, channel=true, binary_scope=body+upsampler; not visible in the tensors, defaults used: res_scale=1.0, "
        "img_range=255.0, lsf=true, skip=true"
    )


def test_given_options_are_kept_and_a_disagreement_is_named(tmp_path):
    """The issue's example: a BasicSR MSRResNet with 32 channels, loaded with num_feat=64."""
    model = build_model("srresnet", num_feat=32, num_block=2, binary="fp")
    path = tmp_path / "basicsr.pth"
    torch.save({"params": model.state_dict()}, path)
    assert load_checkpoint(path, arch="srresnet").config["num_feat"] == 32
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", num_feat=64)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path} does not fit srresnet (scale=4, binary=fp, binary_scope=body): conv_first.weight: checkpoint (32,3,3,3) vs model (64,3,3,3); ")
    assert msg.endswith("... and 14 more (17 shape mismatches)")


def test_a_crafted_block_index_is_not_a_count_to_build(tmp_path):
    """One extra key ``body.100000...`` must not make the loader build 100,000 blocks."""
    sd = build_model("srresnet", num_feat=8, num_block=2, binary="fp").state_dict()
    sd["body.100000.conv1.weight"] = torch.zeros(8, 8, 3, 3)
    path = tmp_path / "crafted.pth"
    torch.save(sd, path)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=r"unexpected body.100000.conv1.weight$"):
        load_checkpoint(path, arch="srresnet")
    assert time.perf_counter() - t0 < 30


def test_a_checkpoint_of_another_arch_is_named_as_such(tmp_path):
    path = tmp_path / "edsr.pth"
    torch.save(build_model("edsr", num_feat=8, num_block=1).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"does not fit srresnet .*missing upconv1.weight"):
        load_checkpoint(path, arch="srresnet")


def test_an_option_missing_from_a_stored_config_is_inferred(tmp_path):
    """A checkpoint saved before an option existed: the option is read from its tensors."""
    model = build_model("srresnet", num_feat=8, num_block=1, scale=2, spatial=False)
    path = save_checkpoint(model, tmp_path / "old.pth")
    raw = torch.load(path, weights_only=True)
    del raw["config"]["spatial"]
    torch.save(raw, path)
    ck = inspect_checkpoint(path)
    assert ck.config["spatial"] is False and ck.inference.matched == {"spatial": False}
    ck.build()


@pytest.fixture()
def toy_arch():
    """An arch with a discrete option declared only through the registry's ``choices`` (as a
    binarization scope is): its tail conv is named and sized differently per choice."""

    class Toy(nn.Module):
        def __init__(self, num_feat: int = 8, tail: str = "plain", scale: int = 2, binary: str = "fp") -> None:
            super().__init__()
            self.conv_first = nn.Conv2d(3, num_feat, 3)
            if tail == "plain":
                self.conv_last = nn.Conv2d(num_feat, 3, 3)
            else:
                self.conv_last = nn.Sequential(nn.Conv2d(num_feat, num_feat, 1), nn.Conv2d(num_feat, 3, 3))

    name = "toy_for_inference_test"
    registry.register(
        name, family="cnn", description="test", binaries=("fp",), choices={"tail": ("plain", "deep")},
        sizes=lambda s: {"num_feat": s.dim("conv_first.weight", 0)},
    )(Toy)
    yield name
    del registry._REGISTRY[name]


def test_a_declared_choice_is_inferred_with_no_new_code(tmp_path, toy_arch):
    model = build_model(toy_arch, num_feat=5, tail="deep")
    path = tmp_path / "toy.pth"
    torch.save(model.state_dict(), path)
    ck = inspect_checkpoint(path, arch=toy_arch)
    assert ck.config["tail"] == "deep" and ck.config["num_feat"] == 5
    assert ck.inference.matched == {"tail": "deep"}
    with pytest.raises(CheckpointError, match="tail must be one of plain, deep, not 'wide'"):
        load_checkpoint(path, arch=toy_arch, tail="wide")


# ----------------------------------------------------------------------------- CLI


def test_cli_commands_take_a_basicsr_checkpoint_with_arch_alone(tmp_path, tiny_photo_dir, monkeypatch):
    """export, info, evaluate and validate --ckpt on a BasicSR params/params_ema file, --arch only."""
    import json

    from typer.testing import CliRunner

    from scales_edge.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    torch.manual_seed(0)
    model = build_model("srresnet", num_feat=8, num_block=1, scale=2, channel=False)
    ckpt = tmp_path / "net_g_latest.pth"
    torch.save({"params": model.state_dict(), "params_ema": model.state_dict()}, ckpt)
    runner = CliRunner()
    note = "note: net_g_latest.pth is a state dict under 'params_ema' (BasicSR); from its tensors: num_in_ch=3, num_feat=8"

    res = runner.invoke(app, ["info", str(ckpt), "--arch", "srresnet", "--json", str(tmp_path / "info.json")])
    assert res.exit_code == 0, res.output
    assert note in res.output and "channel=false" in res.output
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["scale"] == 2 and info["channels"] == 8

    res = runner.invoke(app, ["evaluate", str(ckpt), "--arch", "srresnet", "--images", str(tiny_photo_dir)])
    assert res.exit_code == 0, res.output
    assert note in res.output

    onnx_path = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export", str(ckpt), str(onnx_path), "--arch", "srresnet", "--no-simplify"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", str(onnx_path), "--ckpt", str(ckpt), "--arch", "srresnet", "--size", "12x10"])
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output

    # --set for what the tensors cannot show is taken; a size that disagrees is one line, exit 2
    res = runner.invoke(app, ["info", str(ckpt), "--arch", "srresnet", "--set", "skip=false"])
    assert res.exit_code == 0, res.output
    assert "defaults used: lsf=true\n" in res.output.replace("\r", "")
    res = runner.invoke(app, ["export", str(ckpt), str(tmp_path / "x.onnx"), "--arch", "srresnet", "--set", "num_feat=16"])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "conv_first.weight: checkpoint (8,3,3,3) vs model (16,3,3,3); " in errors[0], res.output
    assert not (tmp_path / "x.onnx").exists()
    res = runner.invoke(app, ["info", str(onnx_path), "--arch", "srresnet"])
    assert res.exit_code == 2 and "--arch and --set describe a checkpoint" in res.output


def test_cli_demo_takes_a_basicsr_checkpoint_with_arch(tmp_path):
    import json

    from typer.testing import CliRunner

    from scales_edge.cli import app

    torch.manual_seed(0)
    ckpt = tmp_path / "net_g.pth"
    torch.save({"params_ema": build_model("srresnet", num_feat=8, num_block=1).state_dict()}, ckpt)
    runner = CliRunner()
    res = runner.invoke(app, ["demo", "--ckpt", str(ckpt), "--arch", "srresnet", "--out", str(tmp_path / "d"), "--runs", "1"])
    assert res.exit_code == 0, res.output
    assert "note: net_g.pth is a state dict under 'params_ema' (BasicSR); from its tensors:" in res.output
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["config"]["num_feat"] == 8
    res = runner.invoke(app, ["demo", "--arch", "srresnet", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "--arch and --set describe the checkpoint given with --ckpt" in res.output
