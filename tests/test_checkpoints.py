"""Tests for scales_edge.checkpoints: our format, foreign formats, and every error path."""

from __future__ import annotations

import pickle
from collections import OrderedDict

import pytest
import torch

from scales_edge import CheckpointError, build_model, load_checkpoint, save_checkpoint

torch.set_num_threads(1)

CFG = dict(num_feat=8, num_block=1, scale=2)


class Opaque:
    """A custom class: a checkpoint holding one must be refused (weights_only)."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def tiny_model(seed: int = 0, **over):
    torch.manual_seed(seed)
    cfg = dict(CFG, **over)
    return build_model("srresnet", **cfg).eval()


def outputs_equal(a, b) -> None:
    torch.manual_seed(123)
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    assert torch.equal(ya, yb)


def same_weights(model, sd) -> bool:
    own = model.state_dict()
    return set(own) == set(sd) and all(torch.equal(own[k], sd[k]) for k in own)


@pytest.fixture()
def saved(tmp_path):
    model = tiny_model(seed=1, binary="scales", spatial=False)
    path = save_checkpoint(model, tmp_path / "sub" / "m.pth")
    return model, path


# ----------------------------------------------------------------------------- our format


def test_our_format_round_trip(saved):
    model, path = saved
    assert path.is_file()
    assert not path.with_name(path.name + ".tmp").exists()
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "scales-edge"
    assert raw["version"] == 1
    assert raw["config"] == model.config
    assert raw["config"]["arch"] == "srresnet" and raw["config"]["spatial"] is False
    assert set(raw["params"]) == set(model.state_dict())
    loaded = load_checkpoint(path)  # no flags at all
    assert not loaded.training
    assert loaded.config == model.config
    assert same_weights(loaded, model.state_dict())
    outputs_equal(model, loaded)


def test_our_format_accepts_agreeing_arguments(saved):
    model, path = saved
    loaded = load_checkpoint(path, arch="SRResNet", scale=2, spatial=False)
    outputs_equal(model, loaded)


def test_save_checkpoint_extra_is_stored_and_ignored_by_loader(tmp_path):
    model = tiny_model(seed=2)
    path = save_checkpoint(model, tmp_path / "t.pth", extra={"train": {"iter": 7}})
    assert torch.load(path, weights_only=True)["train"] == {"iter": 7}
    outputs_equal(model, load_checkpoint(path))


def test_save_checkpoint_needs_a_config(tmp_path):
    with pytest.raises(CheckpointError, match="config"):
        save_checkpoint(torch.nn.Conv2d(3, 3, 3), tmp_path / "x.pth")


# ----------------------------------------------------------------------------- foreign formats


@pytest.mark.parametrize("wrap", ["params", "state_dict", "model", "plain", "module_prefix", "params_module"])
def test_foreign_formats_load_with_arch(tmp_path, wrap):
    model = tiny_model(seed=3, binary="fp")
    sd = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
    prefixed = OrderedDict((f"module.{k}", v) for k, v in sd.items())
    obj = {
        "params": {"params": sd},
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd, "optimizer": {}},
        "plain": sd,
        "module_prefix": prefixed,
        "params_module": {"params": prefixed},
    }[wrap]
    path = tmp_path / f"{wrap}.pth"
    torch.save(obj, path)
    loaded = load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    assert loaded.config["binary"] == "fp"
    assert same_weights(loaded, sd)
    outputs_equal(model, loaded)


def test_params_ema_is_preferred_over_params(tmp_path):
    ema = tiny_model(seed=4, binary="fp")
    other = tiny_model(seed=5, binary="fp")
    assert not same_weights(ema, other.state_dict())
    for obj in ({"params_ema": ema.state_dict(), "params": other.state_dict()},
                {"params": other.state_dict(), "params_ema": ema.state_dict()}):  # fmt: skip
        path = tmp_path / "ema.pth"
        torch.save(obj, path)
        loaded = load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
        assert same_weights(loaded, ema.state_dict())
        outputs_equal(ema, loaded)


def test_foreign_binary_checkpoint_loads(tmp_path):
    model = tiny_model(seed=6, binary="scales")
    path = tmp_path / "p.pth"
    torch.save({"params": model.state_dict()}, path)
    outputs_equal(model, load_checkpoint(path, arch="srresnet", **CFG))


# ----------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="no such") as info:
        load_checkpoint(path)
    assert "nope.pth" in str(info.value)


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not a file"):
        load_checkpoint(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pth"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)


def test_text_file_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.pth: cannot read the checkpoint"):
        load_checkpoint(path, arch="srresnet")


def test_text_file_message_says_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet")
    msg = str(info.value)
    assert "refused for safety" not in msg, msg  # it is not a pickle of foreign objects
    assert "not a pytorch checkpoint" in msg.lower(), msg


def test_text_file_starting_with_h_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "hello.pth"
    path.write_text("hello world\n")
    with pytest.raises(CheckpointError, match="hello.pth"):
        load_checkpoint(path, arch="srresnet")


@pytest.mark.parametrize("content", ["# just some notes\n", "{\"a\": 1}\n", "x" * 200])
def test_other_text_files_are_checkpoint_errors(tmp_path, content):
    path = tmp_path / "t.pth"
    path.write_text(content)
    with pytest.raises(CheckpointError, match="t.pth"):
        load_checkpoint(path, arch="srresnet")


def _cut(tmp_path, good, fraction):
    data = good.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path, saved, fraction):
    path = _cut(tmp_path, saved[1], fraction)
    with pytest.raises(CheckpointError, match="cut.pth: cannot read the checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint_message_short_cut(tmp_path, saved):
    path = _cut(tmp_path, saved[1], 0.1)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_truncated_checkpoint_message_half_cut(tmp_path, saved):
    path = _cut(tmp_path, saved[1], 0.5)
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_custom_class_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"params": Opaque()}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet")
    assert "refused" in str(info.value)
    # and a plain pickle of it (not torch.save) too
    path2 = tmp_path / "evil2.pth"
    path2.write_bytes(pickle.dumps(Opaque(), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(path2, arch="srresnet")


def test_non_dict_checkpoint(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(CheckpointError, match="dict"):
        load_checkpoint(path, arch="srresnet")


def test_missing_keys_are_listed(tmp_path):
    sd = tiny_model(seed=7, binary="fp").state_dict()
    del sd["conv_hr.weight"], sd["body.0.conv1.bias"]
    path = tmp_path / "m.pth"
    torch.save({"params": sd}, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    msg = str(info.value)
    assert "missing keys (2)" in msg
    assert "conv_hr.weight" in msg and "body.0.conv1.bias" in msg
    assert "unexpected" not in msg


def test_unexpected_keys_are_listed(tmp_path):
    sd = tiny_model(seed=8, binary="fp").state_dict()
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "u.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    msg = str(info.value)
    assert "unexpected keys (1)" in msg and "extra.weight" in msg
    assert "missing" not in msg


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    sd = tiny_model(seed=9, binary="fp", num_feat=16).state_dict()  # wider than CFG's 8
    path = tmp_path / "s.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    msg = str(info.value)
    assert "shape mismatches" in msg
    assert "conv_first.weight: checkpoint (16, 3, 3, 3) vs model (8, 3, 3, 3)" in msg


def test_binary_checkpoint_into_fp_model_lists_the_extra_keys(tmp_path):
    path = tmp_path / "b.pth"
    torch.save(tiny_model(seed=10, binary="scales").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"unexpected keys .*alpha"):
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)


def test_plain_state_dict_without_arch(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(tiny_model(seed=11, binary="fp").state_dict(), path)
    with pytest.raises(CheckpointError, match="arch"):
        load_checkpoint(path)


def test_unknown_arch_for_foreign_checkpoint(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save(tiny_model(seed=11, binary="fp").state_dict(), path)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_checkpoint(path, arch="nope_net")


def test_version_2_of_our_format_is_refused(tmp_path, saved):
    _, good = saved
    raw = torch.load(good, weights_only=True)
    raw["version"] = 2
    path = tmp_path / "v2.pth"
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="version 2"):
        load_checkpoint(path)


def test_our_format_without_arch_in_config(tmp_path, saved):
    _, good = saved
    raw = torch.load(good, weights_only=True)
    del raw["config"]["arch"]
    path = tmp_path / "noarch.pth"
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="arch"):
        load_checkpoint(path)


def test_arch_disagreement_with_stored_config(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match="srresnet model, not edsr"):
        load_checkpoint(path, arch="edsr")


def test_option_disagreement_with_stored_config(saved):
    _, path = saved
    with pytest.raises(CheckpointError, match=r"scale=4 \(checkpoint: 2\)"):
        load_checkpoint(path, scale=4)


def test_empty_state_dict(tmp_path):
    path = tmp_path / "e.pth"
    torch.save({"params": {}}, path)
    with pytest.raises(CheckpointError, match="no parameters"):
        load_checkpoint(path, arch="srresnet")


# ----------------------------------------------------------------------------- binary_scope


def _without_scope(model, path):
    """Save ``model`` in our format as a release before binary_scope would have: no such key."""
    cfg = {k: v for k, v in model.config.items() if k != "binary_scope"}
    torch.save({"format": "scales-edge", "version": 1, "config": cfg, "params": model.state_dict()}, path)
    return path


def test_config_without_binary_scope_means_body(tmp_path):
    body = tiny_model(seed=7, binary_scope="body")
    loaded = load_checkpoint(_without_scope(body, tmp_path / "old.pth"))
    assert loaded.config["binary_scope"] == "body"
    outputs_equal(body, loaded)
    # agreeing with the rule is not a conflict; asking for the other scope is
    load_checkpoint(tmp_path / "old.pth", binary_scope="body")
    with pytest.raises(CheckpointError, match="binary_scope"):
        load_checkpoint(tmp_path / "old.pth", binary_scope="body+upsampler")


def test_paper_scope_round_trips(tmp_path):
    model = tiny_model(seed=8, scale=4)
    assert model.config["binary_scope"] == "body+upsampler"
    loaded = load_checkpoint(save_checkpoint(model, tmp_path / "m.pth"))
    assert loaded.config == model.config
    outputs_equal(model, loaded)


def test_unknown_binary_scope_is_one_line_naming_the_key(tmp_path):
    model = tiny_model(seed=9)
    payload = {"format": "scales-edge", "version": 1, "config": dict(model.config, binary_scope="everything"),
               "params": model.state_dict()}
    torch.save(payload, tmp_path / "m.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "m.pth")
    first = str(info.value).splitlines()[0]
    assert "binary_scope" in first and "everything" in first


@pytest.mark.parametrize("stored,actual", [("body+upsampler", "body"), ("body", "body+upsampler")])
def test_tensors_of_the_other_scope_are_named_in_the_first_line(tmp_path, stored, actual):
    model = tiny_model(seed=10, binary_scope=actual)
    payload = {"format": "scales-edge", "version": 1, "config": dict(model.config, binary_scope=stored),
               "params": model.state_dict()}
    torch.save(payload, tmp_path / "m.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "m.pth")
    first = str(info.value).splitlines()[0]
    assert f"binary_scope={stored!r}" in first and f"binary_scope={actual!r}" in first
    # a foreign state dict: the default scope is the paper's, the message says which fits
    torch.save({"params": model.state_dict()}, tmp_path / "p.pth")
    if actual == "body":
        with pytest.raises(CheckpointError, match="binary_scope='body'"):
            load_checkpoint(tmp_path / "p.pth", arch="srresnet", **CFG)
        outputs_equal(model, load_checkpoint(tmp_path / "p.pth", arch="srresnet", binary_scope="body", **CFG))
