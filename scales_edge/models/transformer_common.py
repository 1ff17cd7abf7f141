"""Building blocks shared by the window-attention Transformers of the zoo (SwinIR, HAT).

Layout and parameter names follow the official BasicSR-style implementations, so full-precision
checkpoints of those models load into ``binary="fp"``. The body's linear layers (``qkv``, ``proj``,
``fc1``, ``fc2``) are built through :meth:`scales_edge.nn.BinarySpec.linear`; everything else here
(LayerNorm, attention arithmetic, relative position bias) stays full precision.

Shapes are never baked in. Every size the forward pass needs (padded height and width, number of
windows, the shifted-window attention mask) is computed from the input tensor's shape with tensor
arithmetic. Under the TorchScript tracer ``x.shape[i]`` is a 0-d tensor, so the exported ONNX graph
derives these values from a ``Shape`` op at run time and one exported file serves every H × W.
In eager mode the same code runs on Python ints.

Buffers that are a pure function of the configuration (``relative_position_index`` tables) are
registered non-persistent: they are regenerated at construction and never stored in our checkpoints.
The official checkpoints carry them (and SwinIR's per-block ``attn_mask``); the checkpoint loader
drops those keys (see :mod:`scales_edge.checkpoints`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..nn import BinaryLinearBase, BinarySpec
from .infer import window_from_table

# Shifted-window attention masks use this additive value for token pairs from different regions
# (the official implementations use -100, not -inf).
MASK_VALUE = -100.0
# Image mean of DIV2K used by SwinIR and HAT for 3-channel inputs.
SWIN_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def per_layer(values: int | Sequence[int], n: int, what: str) -> list[int]:
    """``values`` as a list of ``n`` ints (one int is repeated)."""
    if isinstance(values, int):
        return [values] * n
    out = [int(v) for v in values]
    if len(out) != n:
        raise ConfigError(f"{what} needs {n} entries (one per residual group), got {len(out)}")
    return out


def window_layout(depths: Sequence[int], num_heads: int | Sequence[int], window_size: int) -> tuple[list[int], list[int]]:
    """Checked ``(depths, heads per group)`` of a windowed Transformer (SwinIR, HAT)."""
    depths = [int(d) for d in depths]
    if not depths or min(depths) < 1:
        raise ConfigError(f"depths must be positive, got {depths}")
    if window_size < 2:
        raise ConfigError(f"window_size must be >= 2, got {window_size}")
    return depths, per_layer(num_heads, len(depths), "num_heads")


def transformer_sizes(s) -> dict:
    """Sizes SwinIR and HAT show the same way (for the registry's ``sizes`` rules): width from
    ``conv_first``, blocks per group, heads and window side from each group's first relative
    position bias table (``(2w - 1)^2`` rows x heads), MLP ratio from the first ``fc1``."""
    block = "layers.0.residual_group.blocks.0."
    embed = s.dim("conv_first.weight", 0)
    groups = s.count("layers.") or 0
    heads = [s.dim(f"layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table", 1) for i in range(groups)]
    hidden = s.dim(block + "mlp.fc1.weight", 0)
    return {
        "num_in_ch": s.dim("conv_first.weight", 1),
        "embed_dim": embed,
        "depths": s.counts("layers.", "residual_group.blocks."),
        "num_heads": None if not heads or None in heads else heads[0] if len(set(heads)) == 1 else heads,
        "window_size": window_from_table(s.dim(block + "attn.relative_position_bias_table", 0)),
        "mlp_ratio": hidden / embed if hidden and embed else None,
        "upsample_feat": s.dim("conv_before_upsample.0.weight", 0),
        "num_out_ch": s.dim("conv_last.weight", 0),
    }


def frame_radius(upsampler: str, scale: int) -> float:
    """LR pixels the FP frame around the body reaches: ``conv_first`` and ``conv_after_body``
    (3×3 at LR, 1 each) and the upsampler: ``pixelshuffledirect`` one 3×3 conv at LR;
    ``pixelshuffle`` ``conv_before_upsample`` at LR, one 3×3 conv per shuffle stage at that
    stage's input resolution, ``conv_last`` at HR."""
    if upsampler == "pixelshuffledirect":
        return 3.0
    reach, res = 3.0, 1
    for f in [3] if scale == 3 else [2] * (scale // 2):
        reach += 1 / res
        res *= f
    return reach + 1 / res


def window_block_radius(window_size: int) -> int:
    """A (shifted) window attention block: a token attends to its own window, whose windows are
    aligned with the image's grid (shifted ones by half a window), so it reaches ``ws - 1`` px."""
    return window_size - 1


# --------------------------------------------------------------------------------------------
# shape-generic helpers (ints in eager mode, 0-d tensors under the ONNX tracer)


def _clamp_min(v, lo: int):
    return v.clamp(min=lo) if isinstance(v, Tensor) else max(v, lo)


def padded_size(n, multiple: int):
    """The smallest multiple of ``multiple`` that is >= ``n``."""
    return n + (multiple - n % multiple) % multiple


def _reflect_index(n, target, device: torch.device) -> Tensor:
    """Indices ``0..target-1`` folded into ``[0, n)`` by mirror reflection (edge not repeated).

    For ``target - n < n`` this is exactly ``F.pad(..., mode="reflect")``'s index map; for longer
    pads the reflection repeats with period ``2(n-1)`` instead of failing (a 1-pixel input repeats).
    """
    i = torch.arange(target, device=device)
    period = _clamp_min(2 * (n - 1), 1)
    j = torch.remainder(i, period)
    return torch.where(j < n, j, period - j)


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad the bottom and right of an NCHW tensor to a multiple of ``multiple``.

    Matches the reference code's ``F.pad(x, (0, pw, 0, ph), "reflect")``, written as an index
    gather so that the pad amounts come from the input shape in an exported graph.
    """
    h, w = x.shape[2], x.shape[3]
    hp, wp = padded_size(h, multiple), padded_size(w, multiple)
    if not torch.jit.is_tracing() and hp == h and wp == w:
        return x
    x = x.index_select(2, _reflect_index(h, hp, x.device))
    return x.index_select(3, _reflect_index(w, wp, x.device))


def window_partition(x: Tensor, ws: int) -> Tensor:
    """``[B, H, W, C]`` → ``[B * nW, ws*ws, C]``, windows in row-major order, H and W multiples of ws."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    x = x.reshape(-1, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)


def window_reverse(windows: Tensor, ws: int, h, w) -> Tensor:
    """Inverse of :func:`window_partition`: ``[B * nW, ws*ws, C]`` → ``[B, H, W, C]``."""
    c = windows.shape[-1]
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h, w, ws: int, shift: int, device: torch.device) -> Tensor:
    """Additive attention mask ``[nW, ws*ws, ws*ws]`` for windows shifted by ``shift`` (cyclic roll).

    After the roll, the last ``ws`` rows (columns) of the map hold pixels from two regions: the
    ``ws - shift`` before the wrap and the ``shift`` wrapped ones. Each pixel gets a region label
    (row band × column band); two tokens of a window may attend to each other only when their labels
    agree. The labels are computed from ``h`` and ``w``, so the mask follows the input size.
    """

    def band(n) -> Tensor:
        idx = torch.arange(n, device=device)
        return (idx >= n - ws).to(torch.int64) + (idx >= n - shift).to(torch.int64)

    labels = (band(h).unsqueeze(1) * 3 + band(w).unsqueeze(0)).to(torch.float32)  # [h, w]
    win = window_partition(labels.reshape(1, h, w, 1), ws).squeeze(-1)  # [nW, ws*ws]
    differ = win.unsqueeze(1) != win.unsqueeze(2)
    zero = torch.zeros((), dtype=torch.float32, device=device)
    return torch.where(differ, zero + MASK_VALUE, zero)


def relative_position_index(ws: int) -> Tensor:
    """``[ws*ws, ws*ws]`` index into a ``(2ws-1)^2`` bias table for (query, key) token pairs."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # [2, N, N], in [0, 2ws-2]
    return rel[0] * (2 * ws - 1) + rel[1]


def overlap_position_index(ws: int, ows: int) -> Tensor:
    """``[ws*ws, ows*ows]`` index for HAT's overlapping cross-attention (query window ``ws``, key
    window ``ows``), into a ``(ws+ows-1)^2`` table.

    Reproduces the official HAT formula exactly, including its offset of ``ws - ows + 1``, which
    yields negative entries; they wrap around the table (as Python indexing does) and the map stays
    one-to-one, so trained weights depend on this exact layout.
    """
    q = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    k = torch.stack(torch.meshgrid(torch.arange(ows), torch.arange(ows), indexing="ij")).flatten(1)
    rel = k[:, None, :] - q[:, :, None] + (ws - ows + 1)  # [2, ws*ws, ows*ows]
    return rel[0] * (ws + ows - 1) + rel[1]


def overlapping_windows(x: Tensor, ws: int, ows: int) -> Tensor:
    """``[B, H, W, C]`` → ``[B * nW, ows*ows, C]``: windows of size ``ows`` centred on the ``ws``
    grid (stride ``ws``), zero outside the map; the same windows as ``nn.Unfold(ows, stride=ws,
    padding=(ows-ws)//2)`` in HAT, gathered with index tensors computed from the shape."""
    p = (ows - ws) // 2
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    nh, nw = h // ws, w // ws
    xp = F.pad(x, (0, 0, p, p, p, p))  # [B, H+2p, W+2p, C]
    offs = torch.arange(ows, device=x.device)
    rows = (torch.arange(nh, device=x.device).unsqueeze(1) * ws + offs.unsqueeze(0)).reshape(-1)
    cols = (torch.arange(nw, device=x.device).unsqueeze(1) * ws + offs.unsqueeze(0)).reshape(-1)
    xp = xp.index_select(1, rows).index_select(2, cols)  # [B, nh*ows, nw*ows, C]
    xp = xp.reshape(-1, nh, ows, nw, ows, c).permute(0, 1, 3, 2, 4, 5)
    return xp.reshape(-1, ows * ows, c)


def lookup_in_graph(index: Tensor, like: Tensor) -> Tensor:
    """``index``, made to depend on ``like``'s (dynamic) first dimension when traced for export.

    A relative position bias is a table lookup, ``table[index]``, of two constants, which constant
    folding (the exporter's and onnxsim's) would store expanded: ``heads × N × N`` floats per block
    instead of the ``(2ws-1)² × heads`` table (98 KB instead of 5.4 KB a block for window 8 and 6
    heads; 1.5 MB instead of 23 KB for window 16). ``min(index, index + n)`` with ``n =
    like.shape[0] >= 0`` a run-time value equals ``index`` but is not a constant (onnxsim simplifies
    ``index + 0·n`` away, not this), so the ``Gather`` stays in the graph: the file holds the table
    and one shared index, and the lookup costs a small gather per block and run. Eager mode returns
    the index unchanged."""
    if torch.jit.is_tracing():
        return torch.minimum(index, index + like.shape[0])
    return index


def tokens_to_image(x: Tensor, h, w) -> Tensor:
    """``[B, H*W, C]`` → ``[B, C, H, W]``."""
    return x.transpose(1, 2).reshape(-1, x.shape[2], h, w)


def image_to_tokens(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` → ``[B, H*W, C]``."""
    return x.flatten(2).transpose(1, 2)


# --------------------------------------------------------------------------------------------
# modules


def linear_then(
    layer: nn.Module,
    x: Tensor,
    *,
    act: nn.Module | None = None,
    residual: Tensor | None = None,
    norm: nn.LayerNorm | None = None,
) -> Tensor:
    """``act(layer(norm(x))) + residual``: a linear layer of a block with the LayerNorm right
    before it and the work that directly follows it. A binary linear takes the epilogue itself
    (``forward(x, activation=, residual=)``) and, when an export fuses it into its ``ScalesLinear``
    op (``takes_norm``), the LayerNorm too (``norm=``); a plain ``nn.Linear`` leaves it all to the
    graph. ``act`` is ``None`` or an ``nn.GELU`` (exact form)."""
    if isinstance(layer, BinaryLinearBase) and layer.takes_norm:
        return layer(x, activation=_activation_name(act), residual=residual, norm=norm)
    if norm is not None:
        x = norm(x)
    if isinstance(layer, BinaryLinearBase):
        return layer(x, activation=_activation_name(act), residual=residual)
    y = layer(x)
    if act is not None:
        y = act(y)
    return y if residual is None else y + residual


def _activation_name(act: nn.Module | None) -> str | None:
    if act is None:
        return None
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    raise ConfigError(f"a binary linear can be followed by GELU only, not {act}")


class Mlp(nn.Module):
    """``fc1`` → GELU → ``fc2`` (both built by ``spec.linear``); ``residual`` is added to
    ``fc2``'s output (the block's skip)."""

    def __init__(self, spec: BinarySpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = spec.linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = spec.linear(hidden, dim)

    def forward(self, x: Tensor, residual: Tensor | None = None, norm: nn.LayerNorm | None = None) -> Tensor:
        """``fc2(gelu(fc1(norm(x)))) + residual``."""
        return linear_then(self.fc2, linear_then(self.fc1, x, act=self.act, norm=norm), residual=residual)


class PatchEmbed(nn.Module):
    """Patch size 1: the feature map is already the token grid; only the optional LayerNorm holds
    weights (``patch_embed.norm``), as in the official code."""

    def __init__(self, dim: int, norm: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = image_to_tokens(x)
        return self.norm(x) if self.norm is not None else x


def window_attention(
    qkv: Tensor,
    table: Tensor,
    index: Tensor,
    heads: int,
    ws: int,
    shift: int = 0,
    kws: int | None = None,
    scale: float = 1.0,
    mask: Tensor | None = None,
) -> Tensor:
    """Multi-head attention inside windows of a map of per-pixel ``q | k | v``: ``[B, H, W, 3C]`` →
    ``[B, H, W, C]`` (the output of every head, before the projection); H and W multiples of ``ws``.

    Queries attend within their ``ws × ws`` window, keys and values come from the window itself
    (``kws = ws``: Swin's (shifted) window self-attention; with ``shift`` the map is rolled by
    ``-shift`` first and back after, and ``mask`` (:func:`shifted_window_mask`, computed here when
    not given) keeps the wrapped regions apart) or from the ``kws × kws`` window centred on it, zero
    outside the map (HAT's overlapping cross-attention, ``shift = 0``). Logits are
    ``(q · scale) @ kᵀ + table[index]``. This is the PyTorch form of the op
    ``scales_edge::WindowAttention`` (docs/ops.md), which an export writes instead
    (:meth:`WindowAttention.attend`)."""
    kws = ws if kws is None else kws
    h, w, c = qkv.shape[1], qkv.shape[2], qkv.shape[3] // 3
    d = c // heads
    nq, nk = ws * ws, kws * kws
    if shift:
        qkv = torch.roll(qkv, shifts=(-shift, -shift), dims=(1, 2))
    if kws == ws:
        win = window_partition(qkv, ws)  # [B*nW, N, 3C]
        parts = win.reshape(-1, nq, 3, heads, d).permute(2, 0, 3, 1, 4)
        q, k, v = parts[0], parts[1], parts[2]
    else:
        q = window_partition(qkv[..., :c], ws).reshape(-1, nq, heads, d).transpose(1, 2)
        kv = overlapping_windows(qkv[..., c:], ws, kws)  # [B*nW, nk, 2C]
        k = kv[..., :c].reshape(-1, nk, heads, d).transpose(1, 2)
        v = kv[..., c:].reshape(-1, nk, heads, d).transpose(1, 2)
    attn = (q * scale) @ k.transpose(-2, -1)  # [B*nW, heads, nq, nk]
    index = lookup_in_graph(index, qkv)
    bias = table[index.reshape(-1)].reshape(nq, nk, heads).permute(2, 0, 1)
    attn = attn + bias.unsqueeze(0)
    if shift:
        if mask is None:
            mask = shifted_window_mask(h, w, ws, shift, qkv.device)
        nw = mask.shape[0]
        attn = attn.reshape(-1, nw, heads, nq, nk) + mask.unsqueeze(1).unsqueeze(0)
        attn = attn.reshape(-1, heads, nq, nk)
    attn = attn.softmax(dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(-1, nq, c)
    out = window_reverse(out, ws, h, w)
    if shift:
        out = torch.roll(out, shifts=(shift, shift), dims=(1, 2))
    return out


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``ws × ws`` windows with a learned relative position bias:
    the ``qkv`` and ``proj`` linears and the bias table; the block applies them around
    :meth:`attend` (``qkv`` and ``proj`` act on each token alone, so they run on the image's
    tokens, before the windows are formed and after they are put back).

    ``own_index=True`` keeps the (non-persistent) ``relative_position_index`` here (SwinIR);
    otherwise the caller passes the index (HAT shares one per model).
    """

    def __init__(
        self,
        spec: BinarySpec,
        dim: int,
        window_size: int,
        num_heads: int,
        qkv_bias: bool = True,
        own_index: bool = True,
        key_window_size: int | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embedding width {dim} is not divisible by {num_heads} heads")
        self.dim = dim
        self.window_size = window_size
        self.key_window_size = window_size if key_window_size is None else key_window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        table = (window_size + self.key_window_size - 1) ** 2
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        if own_index:
            self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        else:
            self.relative_position_index = None
        self.qkv = spec.linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = spec.linear(dim, dim)
        # Export hook: when set, ``attend`` calls it instead (see scales_edge.export).
        self.attention_override = None

    def attend(self, qkv: Tensor, shift: int = 0, mask: Tensor | None = None, index: Tensor | None = None) -> Tensor:
        """``[B, H, W, 3C]`` → ``[B, H, W, C]``: :func:`window_attention` with this module's
        heads, windows, scale and bias table (``index``: the caller's, or this module's)."""
        index = self.relative_position_index if index is None else index
        if self.attention_override is not None:
            return self.attention_override(self, qkv, shift, index)
        return window_attention(
            qkv, self.relative_position_bias_table, index, self.num_heads, self.window_size, shift,
            self.key_window_size, self.scale, mask,
        )

    def forward(
        self, x: Tensor, h, w, shift: int = 0, mask: Tensor | None = None, index: Tensor | None = None,
        residual: Tensor | None = None, norm: nn.LayerNorm | None = None,
    ) -> Tensor:
        """``x``: ``[B, H*W, C]`` tokens of an ``h × w`` map → ``proj(attention(qkv(norm(x))))
        (+ residual)``."""
        c = self.dim
        qkv = linear_then(self.qkv, x, norm=norm).reshape(-1, h, w, 3 * c)
        out = self.attend(qkv, shift, mask, index).reshape(-1, h * w, c)
        return linear_then(self.proj, out, residual=residual)
