"""Checkpoints: our self-describing format, plus the formats other SR code bases write.

Our format (``format: scales-edge``, ``version: 1``) is a ``torch.save`` of::

    {"format": "scales-edge", "version": 1,
     "config": {"arch": ..., ...every build_model keyword...},
     "params": state_dict,
     "checksum": "sha256:..."}

so :func:`load_checkpoint` rebuilds the model with no flags. A training checkpoint carries the same
keys plus ``"train"`` (optimizer, scheduler, iteration), which the loader ignores. ``checksum`` covers
every tensor of the file (the training state's too): a file damaged after it was written is refused
with one line instead of loading weights that are silently off. Files saved before the
checksum existed (no ``checksum`` key) still load; the zip container's own CRCs are checked for every
file, ours or not. Writes are atomic (:mod:`scales_edge.fileio`): an interrupted save leaves the old
file, never half of a new one.

The loader also accepts, with the architecture given as arguments:

* BasicSR dicts: ``{"params": ...}`` and/or ``{"params_ema": ...}`` (``params_ema`` preferred);
* ``{"state_dict": ...}`` and ``{"model": ...}`` dicts;
* a plain state dict.

For those, ``arch`` alone is enough: sizes, scale, binarization and the other options the tensors
determine are inferred from them (:mod:`scales_edge.models.infer`); options given as keywords are
kept as given. Before any model is allocated, the configuration (stored or inferred) is checked
against the tensors' shapes on the meta device, so a config that disagrees with its tensors (say
``num_feat=4096`` beside 40-channel tensors) is one line of error, not tens of gigabytes. Options a
stored config lacks (a checkpoint older than the option) are inferred the same way.

``module.`` prefixes (DataParallel / DDP) are stripped. Files are read with ``weights_only=True``, so a
checkpoint can never run code.

Regenerable buffers. The official SwinIR and HAT code stores buffers that are a pure function of the
configuration: ``relative_position_index`` (each SwinIR window attention), ``attn_mask`` (each shifted
SwinIR block, sized for the training patch), ``relative_position_index_SA`` and
``relative_position_index_OCA`` (the HAT model). Our models rebuild them (non-persistent buffers, or
per input size for the masks), so before the strict load :func:`load_state` drops every key whose last
component is one of :data:`REGENERABLE_BUFFERS` and that the model does not hold as state. When the
model has a buffer of that name (the position indices), the checkpoint's copy must equal it: a
difference means another window size, and is reported rather than ignored.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, ConfigError
from .fileio import atomic_path
from .models import build_model, full_config, stored_config
from .models.infer import (
    REGENERABLE_BUFFERS,
    Inference,
    StateShapes,
    check_fits,
    describe_problems,
    fit_problems,
    infer_config,
    is_regenerable,
)

FORMAT = "scales-edge"
VERSION = 1
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")

__all__ = [
    "Checkpoint",
    "REGENERABLE_BUFFERS",
    "inspect_checkpoint",
    "load_checkpoint",
    "load_state",
    "payload_checksum",
    "read_checkpoint",
    "save_checkpoint",
]


# ------------------------------------------------------------------------------ writing


def save_checkpoint(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (built by :func:`scales_edge.models.build_model`) in our format, with its
    checksum, atomically; ``extra`` entries (e.g. the training state) are stored beside it."""
    module = model.module if hasattr(model, "module") else model  # DDP / DataParallel
    config = getattr(module, "config", None)
    if not isinstance(config, dict) or "arch" not in config:
        raise CheckpointError(
            "the model has no build configuration (model.config); build it with scales_edge.build_model"
        )
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": dict(config),
        "params": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    if extra:
        payload.update(extra)
    payload["checksum"] = payload_checksum(payload)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def payload_checksum(payload: Mapping[str, Any]) -> str:
    """SHA-256 over every tensor of a checkpoint (the weights, and the optimizer state of a training
    checkpoint): its place in the file, dtype, shape and bytes, in insertion order (which a save and
    a load keep). Plain values (the config, the iteration) are not covered: they may be edited, and
    the config is checked against the tensors' shapes anyway."""
    h = hashlib.sha256()

    def walk(path: str, obj: Any) -> None:
        if isinstance(obj, torch.Tensor):
            t = obj.detach().to("cpu").contiguous().reshape(-1)
            h.update(f"{path}|{t.dtype}|{tuple(obj.shape)}\n".encode())
            if t.numel():
                h.update(t.view(torch.uint8).numpy().data)
        elif isinstance(obj, Mapping):
            for key, value in obj.items():
                walk(f"{path}/{key!r}", value)
        elif isinstance(obj, (list, tuple)):
            for i, value in enumerate(obj):
                walk(f"{path}[{i}]", value)

    for key, value in payload.items():
        if key != "checksum":
            walk(repr(key), value)
    return "sha256:" + h.hexdigest()


# ------------------------------------------------------------------------------ reading


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True``, after checking the zip container's CRCs, and the
    checksum of our format when the file has one; every failure is a one-line CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    damaged = _damaged_zip_member(path)
    if damaged:
        raise CheckpointError(f"{path}: the file is corrupt: {damaged}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files (KeyError, OSError, ...)
        raise CheckpointError(f"{path}: cannot read the checkpoint: {_why_unreadable(path, exc)}") from None
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT and obj.get("version") == VERSION and "checksum" in obj:
        if obj["checksum"] != payload_checksum(obj):
            raise CheckpointError(
                f"{path}: the file is corrupt: its tensors do not match the checksum saved with them (they "
                "changed after it was written); use another copy, or delete its 'checksum' entry if you "
                "edited the tensors on purpose"
            )
    return obj


def _damaged_zip_member(path: Path) -> str | None:
    """For a zip container (what ``torch.save`` writes): the first member whose CRC fails."""
    with open(path, "rb") as fh:
        if fh.read(2) != b"PK":
            return None
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None  # torch.load says what is wrong with the container
    return None if bad is None else f"member {bad} fails its CRC check"


def _why_unreadable(path: Path, exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
        return "it holds objects other than tensors and plain containers (refused for safety; " + text + ")"
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):  # torch.save's zip container
        try:
            with zipfile.ZipFile(path) as zf:
                zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            return "it is truncated or corrupt (the zip container cannot be read)"
        return f"it is a zip file but not a PyTorch checkpoint ({text})"
    if head[:1] == b"\x80":  # a legacy pickle-based torch.save
        return f"it is truncated or corrupt ({type(exc).__name__}: {text})"
    return "it is not a PyTorch checkpoint"


def _extract_state(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, str]:
    """The state dict, for our format the config, and what kind of file it was."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: a checkpoint must hold a dict, found {type(obj).__name__}")
    config = None
    kind = "a plain state dict"
    if obj.get("format") == FORMAT:
        version = obj.get("version")
        if version != VERSION:
            raise CheckpointError(
                f"{path}: scales-edge checkpoint version {version!r}; this release reads version {VERSION}"
            )
        if not isinstance(obj.get("config"), Mapping) or "arch" not in obj["config"]:
            raise CheckpointError(f"{path}: scales-edge checkpoint without a config naming its arch")
        config = dict(obj["config"])
        state = obj.get("params")
        kind = "a scales-edge checkpoint"
    else:
        state = obj
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                state = obj[key]
                kind = f"a state dict under {key!r}" + (" (BasicSR)" if key.startswith("params") else "")
                break
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: no parameters found (expected {', '.join(_WRAPPER_KEYS)} or a state dict)")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: not a state dict: entries that are not tensors: {', '.join(map(str, bad[:5]))}"
        )
    stripped = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    return stripped, config, kind


# ------------------------------------------------------------------------------ loading


def drop_regenerable_buffers(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """``state`` without the :data:`REGENERABLE_BUFFERS` keys the model rebuilds itself (see the
    module docstring); a stored position index that disagrees with the model's is an error."""
    own = model.state_dict()
    buffers = dict(model.named_buffers(remove_duplicate=False))  # non-persistent and shared ones too
    kept: dict[str, torch.Tensor] = {}
    bad: list[str] = []
    for key, value in state.items():
        if key in own or not is_regenerable(key):
            kept[key] = value
            continue
        mine = buffers.get(key)
        if mine is not None and (mine.shape != value.shape or not torch.equal(mine.to(value.dtype), value)):
            bad.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(mine.shape)}")
    if bad:
        raise CheckpointError(
            f"{source} does not fit the model: position indices differ (another window size?): "
            + describe_problems(bad, {"position indices": len(bad)})
        )
    return kept


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` strictly; a mismatch is one line naming the first differing keys and shapes
    and how many more. Keys of :data:`REGENERABLE_BUFFERS` the model does not store are dropped."""
    state = drop_regenerable_buffers(model, state, source)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems, counts = fit_problems({k: tuple(v.shape) for k, v in state.items()}, own)
    if problems:
        raise CheckpointError(f"{source} does not fit the model: {describe_problems(problems, counts)}")
    model.load_state_dict(state, strict=True)


@dataclass
class Checkpoint:
    """A checkpoint read and checked against its configuration, not yet built (see
    :func:`inspect_checkpoint`)."""

    path: Path
    kind: str  # "a scales-edge checkpoint", "a state dict under 'params_ema' (BasicSR)", ...
    config: dict[str, Any]  # the full build configuration
    state: dict[str, torch.Tensor] = field(repr=False)
    inference: Inference | None = None  # set when (part of) the config came from the tensors

    def build(self) -> nn.Module:
        """The model with the checkpoint's weights, in eval mode."""
        model = build_model(**self.config)
        load_state(model, self.state, source=str(self.path))
        return model.eval()


def warm_start(model: nn.Module, path: str | os.PathLike) -> list[str]:
    """Copy into ``model`` every tensor of checkpoint ``path`` (any format :func:`load_checkpoint`
    reads) whose name and shape are the model's, e.g. a body-scope model's weights into the same
    model in the paper scope, whose binary upsampler convs keep the FP convs' names (BasicSR's
    ``pretrain_network_g`` with ``strict_load_g: false``). The model's other tensors keep their
    values. Returns the names copied; none is an error."""
    path = Path(path)
    state, _, _ = _extract_state(read_checkpoint(path), path)
    own = model.state_dict()
    take = [k for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)]
    if not take:
        raise CheckpointError(f"{path}: none of its tensors has the name and shape of one of the model's; nothing to start from")
    with torch.no_grad():
        for k in take:
            own[k].copy_(state[k])
    return take


def inspect_checkpoint(path: str | os.PathLike, arch: str | None = None, **config: Any) -> Checkpoint:
    """Read a checkpoint and settle its configuration, allocating no model.

    For our format the stored config is used; ``arch`` and ``config`` given here must agree with it
    (a disagreement is an error, never a silent override), and options it lacks are inferred from the
    tensors. Other formats need ``arch``; the options given here are kept and the rest inferred from
    the tensors. Either way the configuration is then checked against the tensors on the meta device.
    """
    path = Path(path)
    raw = read_checkpoint(path)
    state, stored, kind = _extract_state(raw, path)
    shapes = StateShapes.of(state)
    if stored is not None:
        stored = stored_config(stored)  # keys the checkpoint predates (binary_scope)
        if arch is not None and arch.lower() != str(stored["arch"]).lower():
            raise CheckpointError(f"{path}: checkpoint holds a {stored['arch']} model, not {arch}")
        conflicts = {k: (stored.get(k), v) for k, v in config.items() if k in stored and stored[k] != v}
        if conflicts:
            text = ", ".join(f"{k}={v[1]!r} (checkpoint: {v[0]!r})" for k, v in conflicts.items())
            raise CheckpointError(f"{path}: options disagree with the checkpoint: {text}")
        arch, given = str(stored["arch"]), {**{k: v for k, v in stored.items() if k != "arch"}, **config}
    elif arch is None:
        raise CheckpointError(
            f"{path}: this checkpoint does not name its architecture; pass arch= (and its options)"
        )
    else:
        given = dict(config)
    try:
        full = full_config(arch, **given)
        inference = None
        if stored is None or set(full) - {"arch"} - set(given):
            inference = infer_config(arch, shapes, given)
            full = full_config(arch, **{k: v for k, v in inference.config.items() if k != "arch"})
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    check_fits(full, shapes, str(path))
    return Checkpoint(path, kind, full, state, inference)


def load_checkpoint(path: str | os.PathLike, arch: str | None = None, **config: Any) -> nn.Module:
    """Rebuild and load a model, in eval mode (see :func:`inspect_checkpoint` for the rules)."""
    return inspect_checkpoint(path, arch, **config).build()
