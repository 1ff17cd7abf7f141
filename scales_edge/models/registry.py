"""The architecture registry: ``build_model(arch, **config)`` builds any model of the zoo by name.

An entry knows its builder, its family (``cnn`` or ``transformer``), its default configuration and
the binarizations it supports. The full configuration a model was built with (defaults filled in)
is kept on the model as ``model.config``, so a checkpoint can rebuild it with no flags.

For checkpoints that do not carry their configuration (BasicSR ``params``/``params_ema``, plain state
dicts) an entry also says what the tensors determine (see :mod:`scales_edge.models.infer`): ``sizes``
reads the size options from the tensors' shapes, ``repeats`` names the options that only repeat
blocks, and ``choices`` lists the values of discrete options beyond the ones every arch has
(``binary``: the entry's ``binaries``; ``scale``: :data:`SUPPORTED_SCALES`; booleans). The discrete
options are found by matching candidate models built on the meta device, so a new choice declared
here is inferred with no new code.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from ..errors import ConfigError
from .common import SUPPORTED_SCALES

#: ``sizes`` rules read a state dict through :class:`scales_edge.models.infer.StateShapes`.
SizeRule = Callable[[Any], dict[str, Any]]


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
    # What a state dict determines (see the module docstring).
    sizes: SizeRule | None = None
    repeats: tuple[str, ...] = ()
    choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @property
    def scopes(self) -> tuple[str, ...]:
        """Values of ``binary_scope`` (CNNs); empty: the arch has no such key."""
        return tuple(self.choices.get("binary_scope", ()))

    def option_choices(self, config: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
        """The values each discrete option of ``config`` (a full configuration) can take."""
        out: dict[str, tuple[Any, ...]] = {}
        for key, value in config.items():
            if key == "binary":
                out[key] = self.binaries
            elif key == "scale":
                out[key] = SUPPORTED_SCALES
            elif key in self.choices:
                out[key] = tuple(self.choices[key])
            elif isinstance(value, bool):
                out[key] = (True, False)
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
    sizes: SizeRule | None = None,
    repeats: tuple[str, ...] = (),
    choices: dict[str, tuple[Any, ...]] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``builder`` under ``name``; ``defaults`` override the builder's own defaults."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name.lower()
        if key in _REGISTRY:
            raise ValueError(f"architecture {name!r} is registered twice")
        _REGISTRY[key] = ArchEntry(
            key, builder, family, description, binaries, dict(defaults or {}), receptive_radius,
            sizes, tuple(repeats), dict(choices or {}),
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
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    defaults.update(entry.defaults)
    resolved = {**defaults, **config}
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
    for key, value in resolved.items():
        _check_value(entry, key, value, defaults.get(key))
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


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _check_value(entry: ArchEntry, key: str, value: Any, default: Any) -> None:
    """Values of the wrong kind or out of range are refused before anything is built: a declared
    choice must be one of its values, a flag a bool, an option whose default is a positive integer
    (a size or a count) a positive integer or a list of them (``depths``, per-group ``num_heads``),
    and one whose default is a positive float (a ratio) a positive finite number."""
    choices = entry.choices.get(key, SUPPORTED_SCALES if key == "scale" else None)
    if choices is not None:
        if value not in choices or isinstance(value, bool):
            raise ConfigError(f"{entry.name}: {key} must be one of {', '.join(map(str, choices))}, not {value!r}")
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{entry.name}: {key} is true or false, not {value!r}")
    elif isinstance(default, (list, tuple)) or (_positive_int(default) and isinstance(value, (list, tuple))):
        if not isinstance(value, (list, tuple)) or not value or not all(_positive_int(v) for v in value):
            raise ConfigError(f"{entry.name}: {key} must be a list of positive integers, got {value!r}")
    elif _positive_int(default) and key in entry.repeats:
        # a count of repeated blocks: 0 is the network without them (head and tail only)
        if not (_positive_int(value) or (isinstance(value, int) and not isinstance(value, bool) and value == 0)):
            raise ConfigError(f"{entry.name}: {key} must be 0 or a positive integer, got {value!r}")
    elif _positive_int(default):
        if not _positive_int(value):
            raise ConfigError(f"{entry.name}: {key} must be a positive integer, got {value!r}")
    elif isinstance(default, float) and default > 0:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ConfigError(f"{entry.name}: {key} must be a positive number, got {value!r}")


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

