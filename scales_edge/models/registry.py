"""The architecture registry: ``build_model(arch, **config)`` builds any model of the zoo by name.

An entry knows its builder, its family (``cnn`` or ``transformer``), its default configuration, the
binarizations it supports and, for the CNNs, the binarization scopes (``binary_scope``: which
convs are binary, see :data:`scales_edge.models.common.BINARY_SCOPES`). ``entry.choices`` lists
every config key with a discrete set of values (``binary``, ``binary_scope``). The full
configuration a model was built with (defaults filled in) is kept on the model as ``model.config``, so a checkpoint can rebuild it with no flags.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class ArchEntry:
    name: str
    builder: Callable[..., nn.Module]
    family: str  # "cnn" or "transformer"
    description: str
    binaries: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    # For window-attention models: LR pixels an output pixel depends on, on each side, given the
    # full configuration (``model.config``), when the windows align with the image's grid (see
    # scales_edge.runtime.tiling). None: not declared.
    receptive_radius: Callable[[dict[str, Any]], float] | None = None
    # Values of ``binary_scope`` (CNNs); empty: the arch has no such key.
    scopes: tuple[str, ...] = ()

    @property
    def choices(self) -> dict[str, tuple[Any, ...]]:
        """Config keys with a discrete set of values, and those values (e.g. to find the config a
        state dict fits by trying them)."""
        out: dict[str, tuple[Any, ...]] = {"binary": self.binaries}
        if self.scopes:
            out["binary_scope"] = self.scopes
        return out


_REGISTRY: dict[str, ArchEntry] = {}


def register(
    name: str,
    *,
    family: str,
    description: str,
    binaries: tuple[str, ...],
    defaults: dict[str, Any] | None = None,
    receptive_radius: Callable[[dict[str, Any]], float] | None = None,
    scopes: tuple[str, ...] = (),
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder`` under ``name``; ``defaults`` override the builder's own defaults."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name.lower()
        if key in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[key] = ArchEntry(
            key, builder, family, description, binaries, dict(defaults or {}), receptive_radius, tuple(scopes)
        )
        return builder

    return deco


def list_archs() -> list[str]:
    return sorted(_REGISTRY)


def get_arch(arch: str) -> ArchEntry:
    try:
        return _REGISTRY[arch.lower()]
    except KeyError:
        raise ConfigError(f"unknown architecture {arch!r}; known: {', '.join(list_archs())}") from None


def full_config(arch: str, **config: Any) -> dict[str, Any]:
    """The complete build configuration: builder defaults, then the entry's, then ``config``."""
    entry = get_arch(arch)
    params = inspect.signature(entry.builder).parameters
    unknown = sorted(k for k in config if k not in params)
    if unknown:
        raise ConfigError(
            f"{entry.name} does not take {', '.join(unknown)}; it takes {', '.join(params)}"
        )
    resolved = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    resolved.update(entry.defaults)
    resolved.update(config)
    missing = [k for k in params if k not in resolved]
    if missing:
        raise ConfigError(f"{entry.name} needs {', '.join(missing)}")
    binary = resolved.get("binary")
    if binary is not None and binary not in entry.binaries:
        raise ConfigError(
            f"{entry.name} supports binary={', '.join(entry.binaries)}, not {binary!r}"
        )
    if entry.scopes:
        # recorded concretely: unset means the default for the binarization
        from .common import resolve_scope

        resolved["binary_scope"] = resolve_scope(str(binary), resolved.get("binary_scope"))
    return {"arch": entry.name, **resolved}


def stored_config(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration read back from a checkpoint, with the keys it predates set to what they
    meant when it was written: a CNN config without ``binary_scope`` is ``"body"`` (only the
    residual body was binary before the key existed)."""
    from .common import LEGACY_SCOPE

    cfg = dict(config)
    arch = _REGISTRY.get(str(cfg.get("arch", "")).lower())
    if arch is not None and arch.scopes and "binary_scope" not in cfg:
        cfg["binary_scope"] = LEGACY_SCOPE
    return cfg


def build_model(arch: str, **config: Any) -> nn.Module:
    """Build a model of the zoo; ``model.config`` holds the full configuration (with ``arch``)."""
    cfg = full_config(arch, **config)
    entry = get_arch(arch)
    kwargs = {k: v for k, v in cfg.items() if k != "arch"}
    try:
        model = entry.builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build {entry.name} with {kwargs}: {exc}") from exc
    model.config = cfg  # type: ignore[assignment]
    return model


def scope_misfit(config: dict[str, Any], state: dict[str, Any]) -> str | None:
    """Why a state dict does not load into the model of ``config``, when ``binary_scope`` is the
    reason: the scope whose tensors it does hold (names and shapes), in one line; None when the
    config has no scope or no other scope fits either."""
    scope = config.get("binary_scope")
    entry = _REGISTRY.get(str(config.get("arch", "")).lower())
    if entry is None or not entry.scopes or scope is None:
        return None
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    for other in entry.scopes:
        if other == scope:
            continue
        try:
            model = build_model(**{**config, "binary_scope": other})
        except ConfigError:
            continue
        if {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes:
            return (
                f"binary_scope={scope!r} does not fit the tensors, which are those of binary_scope={other!r} "
                f"(pass --set binary_scope={other} or fix the config)"
            )
    return None
