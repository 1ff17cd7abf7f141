"""Checkpoints: our self-describing format, plus the formats other SR code bases write.

Our format (``format: scales-edge``, ``version: 1``) is a ``torch.save`` of::

    {"format": "scales-edge", "version": 1,
     "config": {"arch": ..., ...every build_model keyword...},
     "params": state_dict}

so :func:`load_checkpoint` rebuilds the model with no flags. A training checkpoint carries the same
keys plus ``"train"`` (optimizer, scheduler, iteration), which the loader ignores.

The loader also accepts, with the architecture given as arguments:

* BasicSR dicts: ``{"params": ...}`` and/or ``{"params_ema": ...}`` (``params_ema`` preferred);
* ``{"state_dict": ...}`` and ``{"model": ...}`` dicts;
* a plain state dict.

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

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import CheckpointError, ConfigError
from .models import build_model, scope_misfit, stored_config

FORMAT = "scales-edge"
VERSION = 1
_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")


def save_checkpoint(model: nn.Module, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Save ``model`` (built by :func:`scales_edge.models.build_model`) in our format, atomically."""
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or "arch" not in config:
        raise CheckpointError(
            "the model has no build configuration (model.config); build it with scales_edge.build_model"
        )
    module = model.module if hasattr(model, "module") else model  # DDP / DataParallel
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": dict(config),
        "params": {k: v.detach().cpu() for k, v in module.state_dict().items()},
    }
    if extra:
        payload.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True``, turning every failure into a CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files (KeyError, OSError, ...)
        raise CheckpointError(f"{path}: cannot read the checkpoint: {_why_unreadable(path, exc)}") from None


def _why_unreadable(path: Path, exc: Exception) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if "Unsupported global" in str(exc) or "Unsupported class" in str(exc):
        return "it holds objects other than tensors and plain containers (refused for safety; " + text + ")"
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK"):  # torch.save's zip container
        try:
            with zipfile.ZipFile(path) as zf:
                bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            return "it is truncated or corrupt (the zip container cannot be read)"
        if bad is not None:
            return f"it is corrupt (member {bad} fails its checksum)"
        return f"it is a zip file but not a PyTorch checkpoint ({text})"
    if head[:1] == b"\x80":  # a legacy pickle-based torch.save
        return f"it is truncated or corrupt ({type(exc).__name__}: {text})"
    return "it is not a PyTorch checkpoint"


def _extract_state(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """The state dict and, for our format, the config."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: a checkpoint must hold a dict, found {type(obj).__name__}")
    config = None
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
    else:
        state = obj
        for key in _WRAPPER_KEYS:
            if isinstance(obj.get(key), Mapping):
                state = obj[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise CheckpointError(f"{path}: no parameters found (expected {', '.join(_WRAPPER_KEYS)} or a state dict)")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: not a state dict: entries that are not tensors: {', '.join(map(str, bad[:5]))}"
        )
    stripped = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    return stripped, config


REGENERABLE_BUFFERS = (
    "attn_mask",
    "relative_position_index",
    "relative_position_index_SA",
    "relative_position_index_OCA",
)


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
        if key in own or key.rsplit(".", 1)[-1] not in REGENERABLE_BUFFERS:
            kept[key] = value
            continue
        mine = buffers.get(key)
        if mine is not None and (mine.shape != value.shape or not torch.equal(mine.to(value.dtype), value)):
            bad.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(mine.shape)}")
    if bad:
        shown = bad[:12] + ([f"... and {len(bad) - 12} more"] if len(bad) > 12 else [])
        raise CheckpointError(
            f"{source} does not fit the model\n  position indices differ (another window size?) "
            f"({len(bad)}): " + ", ".join(shown)
        )
    return kept


def load_state(model: nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` strictly, with an error that lists every missing, unexpected and misshapen key.

    Keys of :data:`REGENERABLE_BUFFERS` that the model does not store are dropped first."""
    state = drop_regenerable_buffers(model, state, source)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        lines = [f"{source} does not fit the model"]

        def listing(title: str, items: list[str]) -> None:
            if items:
                shown = items[:12] + ([f"... and {len(items) - 12} more"] if len(items) > 12 else [])
                lines.append(f"  {title} ({len(items)}): " + ", ".join(shown))

        listing("missing keys", missing)
        listing("unexpected keys", unexpected)
        listing("shape mismatches", mismatched)
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def load_checkpoint(path: str | os.PathLike, arch: str | None = None, **config: Any) -> nn.Module:
    """Rebuild and load a model, in eval mode.

    For our format the stored config is used; ``arch`` and ``config`` given here must agree with it
    (a disagreement is an error, never a silent override). For other formats ``arch`` and the build
    keywords (defaults otherwise) describe the model.
    """
    path = Path(path)
    state, stored = _extract_state(read_checkpoint(path), path)
    if stored is not None:
        stored = stored_config(stored)  # keys the checkpoint predates (binary_scope)
        if arch is not None and arch.lower() != str(stored["arch"]).lower():
            raise CheckpointError(f"{path}: checkpoint holds a {stored['arch']} model, not {arch}")
        conflicts = {k: (stored.get(k), v) for k, v in config.items() if stored.get(k) != v}
        if conflicts:
            text = ", ".join(f"{k}={v[1]!r} (checkpoint: {v[0]!r})" for k, v in conflicts.items())
            raise CheckpointError(f"{path}: options disagree with the checkpoint: {text}")
        cfg = stored
    else:
        if arch is None:
            raise CheckpointError(
                f"{path}: this checkpoint does not name its architecture; pass arch= (and its options)"
            )
        cfg = {"arch": arch, **config}
    try:
        model = build_model(**cfg)
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    try:
        load_state(model, state, source=str(path))
    except CheckpointError as exc:
        why = scope_misfit(model.config, state)
        if why is None:
            raise
        raise CheckpointError(f"{path}: {why}\n{exc}") from None
    return model.eval()
