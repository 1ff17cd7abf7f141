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
from ..nn import BinarySpec
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


class Mlp(nn.Module):
    """``fc1`` → GELU → ``fc2`` (both built by ``spec.linear``)."""

    def __init__(self, spec: BinarySpec, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = spec.linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = spec.linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PatchEmbed(nn.Module):
    """Patch size 1: the feature map is already the token grid; only the optional LayerNorm holds
    weights (``patch_embed.norm``), as in the official code."""

    def __init__(self, dim: int, norm: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = image_to_tokens(x)
        return self.norm(x) if self.norm is not None else x


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``ws × ws`` windows with a learned relative position bias.

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
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"embedding width {dim} is not divisible by {num_heads} heads")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        if own_index:
            self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        else:
            self.relative_position_index = None
        self.qkv = spec.linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = spec.linear(dim, dim)

    def position_bias(self, index: Tensor | None = None, like: Tensor | None = None) -> Tensor:
        """``[heads, N, N]`` bias (looked up in the exported graph, see :func:`lookup_in_graph`)."""
        index = self.relative_position_index if index is None else index
        if like is not None:
            index = lookup_in_graph(index, like)
        n = self.window_size * self.window_size
        bias = self.relative_position_bias_table[index.reshape(-1)].reshape(n, n, self.num_heads)
        return bias.permute(2, 0, 1)

    def forward(self, x: Tensor, mask: Tensor | None = None, index: Tensor | None = None) -> Tensor:
        """``x``: ``[B*nW, N, C]`` window tokens; ``mask``: ``[nW, N, N]`` additive, or None."""
        n, c, heads = self.window_size * self.window_size, self.dim, self.num_heads
        qkv = self.qkv(x).reshape(-1, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # [B*nW, heads, N, N]
        attn = attn + self.position_bias(index, x).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.reshape(-1, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.reshape(-1, heads, n, n)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(out)


def shifted_attention(
    x: Tensor, attn: WindowAttention, h, w, shift: int, mask: Tensor | None, index: Tensor | None = None
) -> Tensor:
    """(Shifted) window attention over a ``[B, H, W, C]`` map; returns ``[B, H*W, C]``."""
    ws = attn.window_size
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
    win = attn(window_partition(x, ws), mask if shift else None, index)
    x = window_reverse(win, ws, h, w)
    if shift:
        x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
    return x.reshape(-1, h * w, attn.dim)
