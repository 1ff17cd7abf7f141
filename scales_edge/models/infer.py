"""What a state dict says about the model it came from, checked before any model is allocated.

The checkpoint loader (:mod:`scales_edge.checkpoints`) uses this module for two jobs:

* :func:`infer_config` — the build configuration of a checkpoint that does not carry one (BasicSR
  ``params``/``params_ema``, a plain state dict), from ``--arch`` alone. Sizes (``num_feat``,
  ``num_block``, ``embed_dim``, ``depths``, ...) are read from the tensors' shapes by the arch's
  ``sizes`` rule in the registry. Discrete options (``binary``, ``scale``, booleans such as
  ``spatial``/``channel``/``qkv_bias``, and every ``choices`` option an arch declares, such as a
  binarization scope) are found by matching: candidate models are built on the meta device (no
  memory, no initialisation cost worth counting) and the candidate whose parameter names and shapes
  agree best with the checkpoint wins, one option at a time. The candidates repeat each block once
  (the arch's ``repeats`` options set to 1), so a search over a 200-block RCAN costs what one over a
  small model does; the checkpoint's keys are compared as templates in which the indices of repeated
  blocks are wildcards. Options the tensors cannot tell apart (``skip``, ``res_scale``, ``img_range``,
  ``lsf`` whose scale and thresholds are stored either way) keep their defaults, and
  :class:`Inference` says which.
* :func:`check_fits` — a configuration (stored in our format, or inferred) against the tensors:
  every integer option is bounded by the checkpoint's own dimensions and tensor count, then the model
  is built on the meta device and its keys and shapes compared with the tensors'. Only a checkpoint
  that fits is ever built for real, so a 2 MB file whose config claims ``num_feat=4096`` is refused
  instead of allocating tens of gigabytes.

A mismatch is one line naming the first differences and how many more, e.g.
``conv_first.weight: checkpoint (32,3,3,3) vs model (64,3,3,3); ... and 40 more (...)``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import torch

from ..errors import CheckpointError, ConfigError
from .registry import ArchEntry, build_model, full_config, get_arch

Shape = tuple[int, ...]

#: Buffers the official SwinIR / HAT code stores that are a pure function of the configuration; our
#: models regenerate them (see :mod:`scales_edge.checkpoints`), so they never count as unexpected.
REGENERABLE_BUFFERS = (
    "attn_mask",
    "relative_position_index",
    "relative_position_index_SA",
    "relative_position_index_OCA",
)


def is_regenerable(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in REGENERABLE_BUFFERS


def fmt_shape(shape: Sequence[int]) -> str:
    """``(32,3,3,3)``, ``(16,)``, ``()``: a tuple, without spaces."""
    dims = [str(int(d)) for d in shape]
    return "(" + ",".join(dims) + ("," if len(dims) == 1 else "") + ")"


class StateShapes:
    """A state dict's ``key -> shape``, with the lookups an arch's ``sizes`` rule needs. Every lookup
    returns None when the key is absent, so a rule reads what is there and skips the rest."""

    def __init__(self, shapes: Mapping[str, Sequence[int]]) -> None:
        self.shapes: dict[str, Shape] = {k: tuple(int(d) for d in v) for k, v in shapes.items()}

    @classmethod
    def of(cls, state: Mapping[str, torch.Tensor]) -> "StateShapes":
        return cls({k: tuple(v.shape) for k, v in state.items()})

    def __len__(self) -> int:
        return len(self.shapes)

    def dim(self, key: str, axis: int) -> int | None:
        shape = self.shapes.get(key)
        if shape is None or not -len(shape) <= axis < len(shape):
            return None
        return shape[axis]

    def count(self, prefix: str) -> int | None:
        """How many numbered children ``prefix`` has, counting 0, 1, 2, ... while they are there
        (``count("body.")`` is 16 for 16 blocks; a stray ``body.99999`` is not a count)."""
        found = set()
        for key in self.shapes:
            if key.startswith(prefix):
                head = key[len(prefix) :].split(".", 1)[0]
                if head.isdigit():
                    found.add(int(head))
        n = 0
        while n in found:
            n += 1
        return n or None

    def counts(self, prefix: str, inner: str) -> list[int] | None:
        """``[count(f"{prefix}{i}.{inner}") for each numbered child i of prefix]`` (e.g. the depth
        of every residual group), or None if any is missing."""
        n = self.count(prefix)
        if not n:
            return None
        out = [self.count(f"{prefix}{i}.{inner}") for i in range(n)]
        return None if any(v is None for v in out) else out  # type: ignore[return-value]

    @property
    def max_dim(self) -> int:
        return max((d for s in self.shapes.values() for d in s), default=0)


def ratio(a: int | None, b: int | None) -> int | None:
    """``a // b`` for two known positive sizes (a channel reduction factor), else None."""
    return a // b if a and b and a >= b else None


def window_from_table(rows: int | None) -> int | None:
    """Window side ``w`` of a relative position bias table with ``(2w - 1)^2`` rows."""
    if not rows:
        return None
    side = math.isqrt(rows)
    return (side + 1) // 2 if side * side == rows and side % 2 == 1 else None


# ------------------------------------------------------------------------------ comparisons


def meta_shapes(config: Mapping[str, Any]) -> dict[str, Shape]:
    """The state dict shapes of the model ``config`` builds, built on the meta device."""
    with torch.device("meta"):
        model = build_model(**config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def fit_problems(ckpt: Mapping[str, Shape], model: Mapping[str, Shape]) -> tuple[list[str], dict[str, int]]:
    """The differences between a checkpoint's and a model's ``key -> shape``: shape mismatches
    first, then missing keys (in model order), then unexpected ones; and their counts."""
    shapes = [
        f"{k}: checkpoint {fmt_shape(ckpt[k])} vs model {fmt_shape(s)}"
        for k, s in model.items()
        if k in ckpt and tuple(ckpt[k]) != tuple(s)
    ]
    missing = [k for k in model if k not in ckpt]
    unexpected = [k for k in ckpt if k not in model and not is_regenerable(k)]
    counts = {"shape mismatches": len(shapes), "missing keys": len(missing), "unexpected keys": len(unexpected)}
    return shapes + [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected], counts


def describe_problems(problems: list[str], counts: Mapping[str, int], limit: int = 3) -> str:
    """One line: the first ``limit`` problems, then how many more and of which kind."""
    text = "; ".join(problems[:limit])
    if len(problems) > limit:
        kinds = ", ".join(f"{n} {what if n > 1 else _singular(what)}" for what, n in counts.items() if n)
        text += f"; ... and {len(problems) - limit} more ({kinds})"
    return text


def _singular(what: str) -> str:
    return what.replace("mismatches", "mismatch").replace("keys", "key").replace("indices", "index")


def mismatch_error(source: str, config: Mapping[str, Any], ckpt: Mapping[str, Shape], model: Mapping[str, Shape]) -> CheckpointError | None:
    problems, counts = fit_problems(ckpt, model)
    if not problems:
        return None
    return CheckpointError(f"{source} does not fit {describe_config(config)}: {describe_problems(problems, counts)}")


def describe_config(config: Mapping[str, Any]) -> str:
    keys = [k for k in ("scale", "binary", "binary_scope") if k in config]
    return f"{config.get('arch', 'the model')} (" + ", ".join(f"{k}={config[k]}" for k in keys) + ")"


def check_bounds(config: Mapping[str, Any], shapes: StateShapes, source: str) -> None:
    """No integer option far beyond the checkpoint's own dimensions and tensor count. Sizes cost
    nothing on the meta device, but counts cost time there (one module per block), so a config
    cannot make even the meta build of :func:`check_fits` large. Generous (16x), since options a
    model does not use (``upsample_feat`` of a direct upsampler) need not show in its tensors."""
    limit = plausible_limit(shapes)
    for key, value in config.items():
        if not _plausible(value, limit):
            raise CheckpointError(
                f"{source}: its config says {key}={value!r}, far beyond the sizes and counts of its tensors "
                f"(at most {limit} is plausible for this file); refused before building the model"
            )


def plausible_limit(shapes: StateShapes) -> int:
    return 16 * max(shapes.max_dim, len(shapes), 64)


def _plausible(value: Any, limit: int) -> bool:
    """Every integer in ``value`` (and a list's sum: blocks per group) at most ``limit``."""
    items = value if isinstance(value, (list, tuple)) else [value]
    ints = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
    return all(v <= limit for v in ints) and sum(ints) <= limit


def check_fits(config: Mapping[str, Any], shapes: StateShapes, source: str) -> None:
    """Raise a one-line CheckpointError unless the model ``config`` builds has exactly the
    checkpoint's keys and shapes (regenerable buffers aside); nothing is allocated."""
    check_bounds(config, shapes, source)
    try:
        model = meta_shapes(config)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    except Exception as exc:  # a builder failing on the meta device on a strange config
        raise CheckpointError(f"{source}: cannot build {describe_config(config)}: {type(exc).__name__}: {exc}") from None
    err = mismatch_error(source, config, shapes.shapes, model)
    if err is not None:
        why = scope_misfit(config, shapes)
        raise err if why is None else CheckpointError(f"{source}: {why}")


def scope_misfit(config: Mapping[str, Any], shapes: StateShapes) -> str | None:
    """When ``binary_scope`` is why the tensors do not fit ``config``: which scope they are, in one
    line (checked on the meta device); None when the config has no scope or no other scope fits."""
    scope = config.get("binary_scope")
    entry = get_arch(str(config["arch"]))
    for other in entry.scopes:
        if other == scope:
            continue
        cfg = {**config, "binary_scope": other}
        try:
            fits = mismatch_error("", cfg, shapes.shapes, meta_shapes(cfg)) is None
        except ConfigError:
            continue
        if fits:
            return (
                f"binary_scope={scope!r} does not fit the tensors, which are those of binary_scope={other!r} "
                f"(pass --set binary_scope={other} or fix the config)"
            )
    return None


# ------------------------------------------------------------------------------ inference


@dataclass
class Inference:
    """A configuration inferred from a state dict, and where each part came from."""

    config: dict[str, Any]
    from_shapes: dict[str, Any] = field(default_factory=dict)  # read from the tensors' shapes
    matched: dict[str, Any] = field(default_factory=dict)  # discrete options chosen by matching
    defaulted: dict[str, Any] = field(default_factory=dict)  # not visible in the tensors: defaults

    def summary(self) -> str:
        seen = {**self.from_shapes, **self.matched}
        text = "from its tensors: " + ", ".join(f"{k}={_show(v)}" for k, v in seen.items())
        if self.defaulted:
            text += "; not visible in the tensors, defaults used: " + ", ".join(
                f"{k}={_show(v)}" for k, v in self.defaulted.items()
            )
        return text


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def _reduced(entry: ArchEntry, config: Mapping[str, Any], n: int = 1) -> dict[str, Any]:
    """``config`` with every ``repeats`` option set to ``n`` (per group for a list)."""
    out = dict(config)
    for key in entry.repeats:
        if key in out:
            value = out[key]
            out[key] = [n] * len(value) if isinstance(value, (list, tuple)) else n
    return out


def _key_template(parts: list[str]) -> str:
    return ".".join("#" if p.isdigit() else p for p in parts)


def _repeat_positions(keys_once: Iterable[str], keys_twice: Iterable[str]) -> set[str]:
    """Templates of the containers whose numbered children multiply when blocks repeat twice."""

    def children(keys: Iterable[str]) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for key in keys:
            parts = key.split(".")
            for i, part in enumerate(parts):
                if part.isdigit():
                    out.setdefault(_key_template(parts[:i]), set()).add(part)
        return out

    once, twice = children(keys_once), children(keys_twice)
    return {t for t, kids in twice.items() if len(kids) > len(once.get(t, ()))}


def _templated(shapes: Mapping[str, Shape], repeats: set[str]) -> set[tuple[str, Shape]]:
    out = set()
    for key, shape in shapes.items():
        parts = key.split(".")
        out.add((".".join("#" if p.isdigit() and _key_template(parts[:i]) in repeats else p for i, p in enumerate(parts)), tuple(shape)))
    return out


def infer_config(arch: str, shapes: StateShapes, given: Mapping[str, Any] | None = None) -> Inference:
    """The build configuration of ``arch`` that fits ``shapes`` best (see the module docstring);
    ``given`` options are kept as they are. The result is not checked: :func:`check_fits` does that."""
    given = dict(given or {})
    entry = get_arch(arch)
    base = full_config(arch, **given)
    sizes: dict[str, Any] = {}
    if entry.sizes is not None:
        try:
            raw = entry.sizes(shapes)
        except (ArithmeticError, TypeError, ValueError, KeyError, IndexError):
            raw = {}  # a state dict of another arch: the comparison will say what differs
        for key, value in raw.items():
            if value is None or key in given or key not in base or not _plausible(value, plausible_limit(shapes)):
                continue  # an index like layers.99999 in a crafted file is not a count to build
            try:
                full_config(arch, **{**given, key: value})
            except ConfigError:
                continue
            sizes[key] = value
    current = {**base, **sizes}
    options = {k: v for k, v in entry.option_choices(current).items() if k not in given and k not in sizes}

    ckpt = {k: s for k, s in shapes.shapes.items() if not is_regenerable(k)}
    cache: dict[str, Any] = {}

    def shapes_of(cfg: Mapping[str, Any]) -> dict[str, Shape] | None:
        key = json.dumps(cfg, sort_keys=True, default=str)
        if key not in cache:
            try:
                cache[key] = meta_shapes(cfg)
            except Exception:  # an impossible combination (ConfigError) or a builder's own check
                cache[key] = None
        return cache[key]

    once = shapes_of(_reduced(entry, current, 1)) or {}
    twice = shapes_of(_reduced(entry, current, 2)) or {}
    repeats = _repeat_positions(once, twice)
    target = _templated(ckpt, repeats)
    target_keys = {k for k, _ in target}

    def score(cfg: Mapping[str, Any]) -> tuple[float, float]:
        """(keys that differ, key-shape pairs that differ): names first, so that a wrong size given
        by the user does not pull the discrete options towards fewer tensors."""
        got = shapes_of(_reduced(entry, cfg, 1))
        if got is None:
            return math.inf, math.inf
        pairs = _templated(got, repeats)
        return len({k for k, _ in pairs} ^ target_keys), len(pairs ^ target)

    best = score(current)

    def alternatives() -> dict[tuple[str, Any], tuple[float, float]]:
        return {
            (key, value): score({**current, key: value})
            for key, values in options.items()
            for value in values
            if value != current[key]
        }

    trials = alternatives()
    while trials:  # greedy: apply the single change that helps most, until none does
        (key, value), s = min(trials.items(), key=lambda kv: kv[1])
        if s >= best:
            break
        current[key], best = value, s
        trials = alternatives()
    determined = {key for (key, _), s in trials.items() if s != best}
    return Inference(
        config=current,
        from_shapes=sizes,
        matched={k: current[k] for k in options if k in determined},
        defaulted={
            k: v for k, v in current.items() if k not in given and k not in sizes and k not in determined and k != "arch"
        },
    )
