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
    assert "\n" not in msg
    assert "missing body.0.conv1.bias; missing conv_hr.weight" in msg
    assert "unexpected" not in msg


def test_unexpected_keys_are_listed(tmp_path):
    sd = tiny_model(seed=8, binary="fp").state_dict()
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "u.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    msg = str(info.value)
    assert msg.endswith("does not fit srresnet (scale=2, binary=fp, binary_scope=body): unexpected extra.weight"), msg
    assert "missing" not in msg


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    sd = tiny_model(seed=9, binary="fp", num_feat=16).state_dict()  # wider than CFG's 8
    path = tmp_path / "s.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, arch="srresnet", binary="fp", **CFG)
    msg = str(info.value)
    assert "\n" not in msg
    # the first mismatches, in model order, then how many more and of which kind
    assert "does not fit srresnet (scale=2, binary=fp, binary_scope=body): conv_first.weight: checkpoint (16,3,3,3) vs model (8,3,3,3); " \
        "conv_first.bias: checkpoint (16,) vs model (8,); body.0.conv1.weight: checkpoint (16,16,3,3) vs model (8,8,3,3); " \
        "... and 8 more (11 shape mismatches)" in msg, msg


def test_binary_checkpoint_into_fp_model_lists_the_extra_keys(tmp_path):
    path = tmp_path / "b.pth"
    torch.save(tiny_model(seed=10, binary="scales", binary_scope="body").state_dict(), path)
    with pytest.raises(CheckpointError, match=r"unexpected body.0.conv1.alpha; unexpected body.0.conv1.beta; .*more \(10 unexpected keys\)"):
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
    # a foreign state dict: the scope is inferred from its tensors; asking for the other one is
    # a one-line error that says which fits
    torch.save({"params": model.state_dict()}, tmp_path / "p.pth")
    loaded = load_checkpoint(tmp_path / "p.pth", arch="srresnet", **CFG)
    assert loaded.config["binary_scope"] == actual
    outputs_equal(model, loaded)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "p.pth", arch="srresnet", binary_scope=stored, **CFG)
    assert "\n" not in str(info.value) and f"which are those of binary_scope={actual!r}" in str(info.value)


# ----------------------------------------------------------------------------- integrity (issue 16)


def _data_members(path):
    """(name, offset of its data, size) of each tensor member of a torch.save zip, largest first."""
    import struct
    import zipfile

    out = []
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if "/data/" in info.filename and info.file_size >= 256:
                fh.seek(info.header_offset)
                header = fh.read(30)
                name_len, extra_len = struct.unpack("<HH", header[26:30])
                out.append((info.filename, info.header_offset + 30 + name_len + extra_len, info.file_size))
    return sorted(out, key=lambda m: -m[2])


def _flip_bytes(src, dst, n=64):
    name, offset, size = _data_members(src)[0]
    data = bytearray(src.read_bytes())
    start = offset + size // 2 - n // 2
    for i in range(start, start + n):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return name


def test_flipped_bytes_in_a_tensor_are_refused(tmp_path, saved):
    _, good = saved
    bad = tmp_path / "flipped.pth"
    member = _flip_bytes(good, bad)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    assert str(info.value) == f"{bad}: the file is corrupt: member {member} fails its CRC check"


def test_flipped_bytes_in_the_demo_checkpoint_are_refused(tmp_path):
    """The issue's probe: the bundled demo checkpoint (saved before checksums existed) with 64
    flipped bytes inside a tensor loaded with weights off by 1e4; the zip CRCs catch it."""
    from scales_edge.demo import DEMO_CHECKPOINT

    bad = tmp_path / "demo_flipped.pth"
    member = _flip_bytes(DEMO_CHECKPOINT, bad)
    with pytest.raises(CheckpointError, match=f"corrupt: member {member} fails its CRC check"):
        load_checkpoint(bad)
    load_checkpoint(DEMO_CHECKPOINT)  # the intact file still loads


def test_checksum_catches_tensors_changed_behind_the_zip(tmp_path, saved):
    """A file rewritten with other tensor values (valid CRCs) and the old checksum: refused; a
    legacy (non-zip) torch.save of it too."""
    _, good = saved
    raw = torch.load(good, weights_only=True)
    assert raw["checksum"].startswith("sha256:")
    raw["params"]["conv_first.weight"][0, 0, 0, 0] += 1e-3
    for name, zipped in (("edited.pth", True), ("legacy.pth", False)):
        path = tmp_path / name
        torch.save(raw, path, _use_new_zipfile_serialization=zipped)
        with pytest.raises(CheckpointError, match="do not match the checksum saved with them"):
            load_checkpoint(path)
    # an edit made on purpose: drop the checksum and the file loads as an old one would
    del raw["checksum"]
    torch.save(raw, tmp_path / "nochecksum.pth")
    loaded = load_checkpoint(tmp_path / "nochecksum.pth")
    assert float(loaded.conv_first.weight[0, 0, 0, 0].detach()) == pytest.approx(float(raw["params"]["conv_first.weight"][0, 0, 0, 0]))


def test_checksum_covers_the_training_state_not_the_plain_values(tmp_path):
    model = tiny_model(seed=2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(1, 3, 6, 6)).mean().backward()
    opt.step()
    path = save_checkpoint(model, tmp_path / "t.pth", extra={"train": {"optimizer": opt.state_dict(), "iter": 1}})
    raw = torch.load(path, weights_only=True)
    raw["train"]["iter"] = 5  # plain values may be edited
    raw["config"]["skip"] = True
    torch.save(raw, path)
    load_checkpoint(path)
    raw["train"]["optimizer"]["state"][0]["exp_avg"].mul_(2)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(path)


def test_save_is_atomic(tmp_path, saved, monkeypatch):
    """A save that fails half-way (a full disk, a kill) leaves the previous file and no temp file."""
    model, good = saved
    before = good.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh:
            fh.truncate(100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tiny_model(seed=9), good)
    assert good.read_bytes() == before
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name]


def _with_config(tmp_path, saved, **changes):
    _, good = saved
    raw = torch.load(good, weights_only=True)
    raw["config"].update(changes)
    path = tmp_path / "edited.pth"
    torch.save(raw, path)
    return path


def test_config_claiming_a_huge_model_is_refused_before_building(tmp_path, saved, monkeypatch):
    """Issue 16's memory bomb: the config says num_feat=4096 beside 8-channel tensors."""
    import scales_edge.checkpoints as ck

    built = []
    monkeypatch.setattr(ck, "build_model", lambda **cfg: built.append(cfg))
    path = _with_config(tmp_path, saved, num_feat=4096)
    with pytest.raises(CheckpointError, match=r"its config says num_feat=4096, far beyond the sizes and counts of its tensors \(at most 1024 is plausible"):
        load_checkpoint(path)
    path = _with_config(tmp_path, saved, num_block=10**9)  # would take forever to build, even on meta
    with pytest.raises(CheckpointError, match=r"its config says num_block=1000000000, far beyond"):
        load_checkpoint(path)
    path = _with_config(tmp_path, saved, num_feat=24)  # plausible, and still not what the tensors hold
    with pytest.raises(CheckpointError, match=r"conv_first.weight: checkpoint \(8,3,3,3\) vs model \(24,3,3,3\)"):
        load_checkpoint(path)
    path = _with_config(tmp_path, saved, num_block=900)
    with pytest.raises(CheckpointError, match=r"missing body.1.conv1.weight"):
        load_checkpoint(path)
    assert built == []  # no model was allocated for any of them


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(num_block=-1), "num_block must be 0 or a positive integer, got -1"),
        (dict(num_feat=0), "num_feat must be a positive integer, got 0"),
        (dict(num_feat=8.0), "num_feat must be a positive integer, got 8.0"),
        (dict(spatial="no"), "spatial is true or false, not 'no'"),
        (dict(scale=-4), "scale must be one of 2, 3, 4, not -4"),
        (dict(scale=5), "scale must be one of 2, 3, 4, not 5"),
        (dict(binary="xnor"), "srresnet supports binary=scales, e2fif, fp, not 'xnor'"),
    ],
)
def test_config_values_out_of_range_are_one_line_errors(tmp_path, saved, change, message):
    path = _with_config(tmp_path, saved, **change)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(info.value) == f"{path}: srresnet: {message}" or str(info.value) == f"{path}: {message}"
