"""binary_scope at the command line: `archs` lists it, `train --set binary_scope=...` records it,
`export` and `info` take it for a plain state dict and report it, and a checkpoint whose scope is
unknown or whose tensors are another scope's is a one-line error naming the key (exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from scales_edge import build_model, load_checkpoint, save_checkpoint
from scales_edge.cli import app

torch.set_num_threads(1)
runner = CliRunner()
TINY = dict(scale=2, num_feat=8, num_block=1)


def _errors(res) -> list[str]:
    return [line for line in res.output.splitlines() if line.startswith("error")]


def test_archs_lists_the_scopes():
    res = runner.invoke(app, ["archs"])
    assert res.exit_code == 0, res.output
    # a table column (rich wraps it) and a note saying what the values mean
    assert "binary_scope" in res.output and res.output.count("body+upsampler") >= 6


@pytest.mark.parametrize("scope", ["body", "body+upsampler"])
def test_train_records_the_scope(tiny_photo_dir, tmp_path, scope):
    out = tmp_path / "run"
    res = runner.invoke(
        app,
        ["train", str(tiny_photo_dir), "--out", str(out), "--scale", "2", "--num-feat", "8", "--num-block", "1",
         "--iters", "1", "--batch-size", "2", "--patch-size", "12", "--repeat", "2", "--threads", "1",
         "--set", f"binary_scope={scope}"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    model = load_checkpoint(out / "model.pth")
    assert model.config["binary_scope"] == scope
    assert any(getattr(m, "upscale", 1) == 2 for m in model.modules()) == (scope == "body+upsampler")


def test_train_with_an_unknown_scope_is_one_line(tiny_photo_dir, tmp_path):
    res = runner.invoke(app, ["train", str(tiny_photo_dir), "--out", str(tmp_path / "x"), "--iters", "1",
                              "--set", "binary_scope=tail"])
    assert res.exit_code == 2
    assert len(_errors(res)) == 1 and "binary_scope" in _errors(res)[0] and "tail" in _errors(res)[0]


def test_export_and_info_take_the_scope_of_a_plain_state_dict(tmp_path):
    torch.manual_seed(0)
    model = build_model("srresnet", binary_scope="body", **TINY)
    torch.save({"params": model.state_dict()}, tmp_path / "plain.pth")
    # asking for the paper scope: the tensors do not fit, the error says which scope does
    res = runner.invoke(app, ["export", str(tmp_path / "plain.pth"), str(tmp_path / "m.onnx"), "--arch", "srresnet",
                              "--set", "scale=2", "--set", "num_feat=8", "--set", "num_block=1",
                              "--set", "binary_scope=body+upsampler"])
    assert res.exit_code == 2 and len(_errors(res)) == 1
    assert "binary_scope='body'" in _errors(res)[0] and not (tmp_path / "m.onnx").exists()
    # not given: inferred from the tensors
    res = runner.invoke(app, ["export", str(tmp_path / "plain.pth"), str(tmp_path / "m.onnx"), "--arch", "srresnet",
                              "--set", "scale=2", "--set", "num_feat=8", "--set", "num_block=1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["info", str(tmp_path / "m.onnx"), "--json", str(tmp_path / "i.json")])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "i.json").read_text())
    assert info["binary_scope"] == "body" and info["op_domain_version"] == 2
    assert "binary_scope=body" in res.output


@pytest.mark.parametrize("command", ["export", "info"])
def test_bad_scope_in_a_checkpoint_is_one_line_exit_2(tmp_path, command):
    torch.manual_seed(0)
    model = build_model("srresnet", **TINY)
    save_checkpoint(model, tmp_path / "good.pth")
    payload = torch.load(tmp_path / "good.pth", weights_only=True)
    payload["config"]["binary_scope"] = "head"
    torch.save(payload, tmp_path / "unknown.pth")
    payload["config"]["binary_scope"] = "body"  # the tensors are the paper scope's
    torch.save(payload, tmp_path / "misfit.pth")
    for name, words in (("unknown.pth", ["binary_scope", "head"]), ("misfit.pth", ["binary_scope='body'", "body+upsampler"])):
        args = [command, str(tmp_path / name)] + ([str(tmp_path / "out.onnx")] if command == "export" else [])
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert len(_errors(res)) == 1 and all(w in _errors(res)[0] for w in words), res.output
    assert not (tmp_path / "out.onnx").exists()
