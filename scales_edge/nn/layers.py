"""SCALES binary layers and the baselines they are compared with.

Every binary convolution here splits into a *core* and a *post* stage. The core is exactly the
``BinaryConv2d`` / ``BinaryLinear`` operator of the ``scales_edge`` ONNX domain (docs/ops.md)::

    core(X) = conv(sign(X - beta), sign(W)) * scale[c] + bias[c]

with ``sign(v) = +1 if v >= 0 else -1`` (see :mod:`scales_edge.nn.functional`), zero padding
applied to the *binarized* input (padded taps contribute nothing), ``scale[c] = alpha * mean|W_c|``
and ``beta`` one threshold per input channel. The post stage is plain floating point and is exported
as standard ONNX ops.

ScalesConv2d, in eval mode, computes exactly::

    Y = core(X)
    Y = Y * sigmoid(conv1x1_{C_in -> 1}(X))                      # spatial re-scaling  (spatial=True)
    Y = Y * sigmoid(conv1d_k5(GAP(S)))[:, :, None, None]          # channel re-scaling  (channel=True)
    Y = Y + X                                                     # skip               (skip=True)

where ``S = X`` when ``C_in == C_out`` (the paper's layout) and ``S`` is the re-scaled core output
when the channel counts differ, so the per-channel scale always has ``C_out`` entries. The skip is
only possible when ``C_in == C_out`` and ``stride == 1``; otherwise it is off (``layer.skip`` tells).

**Binary upsampler convs** (``upscale=r > 1``, the paper-scope tail): a conv ``C_in -> r²·F``
followed by ``PixelShuffle(r)``, whole, as one layer with output ``[N, F, r·H, r·W]``::

    Y = PixelShuffle_r(core(X) * sigmoid(conv1x1(X)))            # spatial scale per LR pixel
    Y = Y * sigmoid(conv1d_k5(GAP(S)))[:, :, None, None]          # one scale per output feature
    Y = Y + NearestUpsample_r(X)                                  # skip (C_in == F)

The skip is E2FIF's full-precision information flow: ``X`` repeated r² times along the channels
(channel ``f·r² + k`` of the conv's output gets ``X[f]``), which after the shuffle is each input
feature copied to its ``r × r`` output pixels, i.e. nearest-neighbour upsampling (exactly: both are
copies). The channel-scale rule: **one scale per output feature ``F``, shared by its r² sub-pixel
channels**, pooled from ``X`` when ``C_in == F`` (the usual case) and from the shuffled, spatially
re-scaled output otherwise. Why: after the shuffle the r² channels of a feature are one feature map
at the higher resolution, so they share a scale as they share the skip and the spatial scale
(scaling the sub-pixel phases apart would imprint a fixed ``r × r`` pattern on the map); the
``k = 5`` Conv1d then mixes neighbouring *features*, as in every other layer, instead of the
sub-pixel phases of one feature; and pooling ``X`` keeps the pooling in the op's first pass over
its input (no extra pass over an output ``r²`` times larger). Scaling each pre-shuffle channel by
its scale multiplied before the shuffle is the same arithmetic, element by element, as scaling
after it, so the order above is also what the fused ONNX op computes.

With ``lsf=False`` the layer-wise scale ``alpha`` is fixed at 1 and the thresholds ``beta`` at 0
(buffers, so the exported graph keeps the same shape). The paper's ablation rows are:
LSF = ``spatial=False, channel=False``; LSF+channel; LSF+spatial; full SCALES.

Baselines:

* :class:`E2FIFConv2d` — ``Y = BN(conv(sign(X), mean|W_c| sign(W))) + X``; in eval mode the batch norm
  folds into ``scale`` and ``bias`` of the same core operator (``beta = 0``).
* :class:`BiBERTLinear` — ``Y = sign(X) @ (mean|W_r| sign(W))^T + b``.
* ``fp`` — plain :class:`torch.nn.Conv2d` / :class:`torch.nn.Linear`.

Training uses straight-through estimators for both signs; alpha and beta get gradients through them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import sign_ste, weight_scale

BINARY_KINDS = ("scales", "e2fif", "bibert", "fp")


class CoreParams(NamedTuple):
    """What the core operator needs, in inference form (detached tensors)."""

    beta: Tensor  # [C_in] threshold
    weight_sign: Tensor  # ±1, [C_out, C_in, kH, kW] or [C_out, C_in]
    scale: Tensor  # [C_out]
    bias: Tensor | None  # [C_out]


def _init_latent(weight: Tensor, bias: Tensor | None) -> None:
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in)
        nn.init.uniform_(bias, -bound, bound)


class BinaryConv2dBase(nn.Module):
    """Common parts of the binary convolutions: latent weights, geometry, the core operator."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        upscale: int = 1,
    ) -> None:
        super().__init__()
        if min(in_channels, out_channels, kernel_size, stride, dilation, upscale) < 1:
            raise ValueError("channels, kernel_size, stride, dilation and upscale must be positive")
        if upscale > 1 and (stride != 1 or out_channels % (upscale * upscale)):
            raise ValueError(
                f"an upsampling binary conv (upscale {upscale}) needs stride 1 and a multiple of "
                f"{upscale * upscale} output channels; got stride {stride}, {out_channels} channels"
            )
        same = dilation * (kernel_size - 1) // 2
        if kernel_size % 2 != 1 or (padding is not None and padding != same):
            # The re-scaling branches and the skip work at the input's resolution (/stride), so the
            # binary conv must keep it: an odd kernel with "same" padding.
            raise ValueError(
                f"binary convs need an odd kernel and 'same' padding ({same} for kernel {kernel_size}, "
                f"dilation {dilation}); got kernel {kernel_size}, padding {padding}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.padding = same
        # upscale r > 1: the conv's out_channels = r²·F are pixel-shuffled into F channels at r x
        # the resolution (see the module docstring); F = shuffled_channels.
        self.upscale = upscale
        self.shuffled_channels = out_channels // (upscale * upscale)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        _init_latent(self.weight, self.bias)
        # Export hook: when set, replaces the core computation (see scales_edge.export).
        self.core_override = None

    def extra_repr(self) -> str:
        up = f", upscale={self.upscale}" if self.upscale > 1 else ""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}{up}"
        )

    def _conv(self, xs: Tensor, ws: Tensor) -> Tensor:
        return F.conv2d(xs, ws, None, self.stride, self.padding, self.dilation)

    def _shuffle(self, y: Tensor) -> Tensor:
        return F.pixel_shuffle(y, self.upscale) if self.upscale > 1 else y

    def _identity(self, x: Tensor) -> Tensor:
        """The skip's term: ``X``, or for an upsampling conv ``X`` repeated r² times along the
        channels and shuffled, which is nearest-neighbour upsampling by r (an exact copy; PyTorch
        and ONNX's ``Resize`` in ``asymmetric``/``floor`` mode pick the same source pixels)."""
        if self.upscale == 1:
            return x
        return F.interpolate(x, scale_factor=self.upscale, mode="nearest")

    def core_params(self) -> CoreParams:
        raise NotImplementedError

    def core(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class ScalesConv2d(BinaryConv2dBase):
    """SCALES binary convolution (see the module docstring for the exact formula)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        *,
        lsf: bool = True,
        spatial: bool = True,
        channel: bool = True,
        skip: bool = True,
        channel_kernel: int = 5,
        upscale: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias, upscale)
        self.lsf = lsf
        if lsf:
            self.alpha = nn.Parameter(torch.ones(()))
            self.beta = nn.Parameter(torch.zeros(in_channels))
        else:
            self.register_buffer("alpha", torch.ones(()))
            self.register_buffer("beta", torch.zeros(in_channels))
        self.spatial = nn.Conv2d(in_channels, 1, 1, stride=stride) if spatial else None
        if channel:
            if channel_kernel % 2 != 1:
                raise ValueError("channel_kernel must be odd")
            self.channel = nn.Conv1d(1, 1, channel_kernel, padding=channel_kernel // 2, bias=False)
        else:
            self.channel = None
        self.channel_from_input = in_channels == self.shuffled_channels
        self.skip = bool(skip and in_channels == self.shuffled_channels and stride == 1)

    def core_params(self) -> CoreParams:
        with torch.no_grad():
            scale = self.alpha * weight_scale(self.weight)
            return CoreParams(
                self.beta.detach().clone(),
                torch.where(self.weight >= 0, 1.0, -1.0),
                scale.detach().clone(),
                None if self.bias is None else self.bias.detach().clone(),
            )

    def core(self, x: Tensor) -> Tensor:
        if self.core_override is not None:
            return self.core_override(self, x)
        xs = sign_ste(x - self.beta.view(1, -1, 1, 1))
        y = self._conv(xs, sign_ste(self.weight))
        scale = self.alpha * weight_scale(self.weight)
        y = y * scale.view(1, -1, 1, 1)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y

    def channel_scale(self, source: Tensor) -> Tensor:
        assert self.channel is not None
        pooled = source.mean(dim=(2, 3)).unsqueeze(1)  # [N, 1, C]
        return torch.sigmoid(self.channel(pooled)).squeeze(1)[:, :, None, None]

    def forward(self, x: Tensor) -> Tensor:
        y = self.core(x)
        if self.spatial is not None:
            y = y * torch.sigmoid(self.spatial(x))
        y = self._shuffle(y)
        if self.channel is not None:
            y = y * self.channel_scale(x if self.channel_from_input else y)
        if self.skip:
            y = y + self._identity(x)
        return y


class E2FIFConv2d(BinaryConv2dBase):
    """E2FIF-style baseline: sign activations, scaled sign weights, batch norm, skip connection."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,  # accepted for a uniform signature; the batch norm carries the bias
        *,
        skip: bool = True,
        upscale: int = 1,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, False, upscale)
        self.bn = nn.BatchNorm2d(out_channels)
        self.skip = bool(skip and in_channels == self.shuffled_channels and stride == 1)

    def core_params(self) -> CoreParams:
        with torch.no_grad():
            inv = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
            return CoreParams(
                torch.zeros(self.in_channels),
                torch.where(self.weight >= 0, 1.0, -1.0),
                (weight_scale(self.weight) * inv).clone(),
                (self.bn.bias - self.bn.running_mean * inv).clone(),
            )

    def core(self, x: Tensor) -> Tensor:
        if self.core_override is not None:
            return self.core_override(self, x)
        y = self._conv(sign_ste(x), sign_ste(self.weight))
        if self.training:
            return self.bn(y * weight_scale(self.weight).view(1, -1, 1, 1))
        inv = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        scale = weight_scale(self.weight) * inv
        bias = self.bn.bias - self.bn.running_mean * inv
        return y * scale.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self._shuffle(self.core(x))
        return y + self._identity(x) if self.skip else y


class BinaryLinearBase(nn.Module):
    """Common parts of the binary linear layers (input ``[..., C_in]``)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        if min(in_features, out_features) < 1:
            raise ValueError("in_features and out_features must be positive")
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        _init_latent(self.weight, self.bias)
        self.core_override = None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    @staticmethod
    def prologue(x: Tensor, norm: nn.Module | None) -> Tensor:
        """``norm(x)``: the LayerNorm a block applies right before the layer (or ``x``). A caller
        passes it to the layer only when :attr:`takes_norm` (an export that fuses it into the
        layer's op); otherwise it applies the norm itself, so that the norm stays the block's
        (in the graph and in profiles) and not the layer's."""
        return x if norm is None else norm(x)

    #: Set by an export that fuses the preceding LayerNorm into the layer's op (see prologue).
    takes_norm = False

    @staticmethod
    def epilogue(y: Tensor, activation: str | None, residual: Tensor | None) -> Tensor:
        """``act(y) + residual``: what a block does right after the layer (``activation``:
        ``None`` or ``"gelu"``, the exact form). Part of the layer's call so that an export can
        fuse it into the layer's op (``scales_edge::ScalesLinear``, docs/ops.md)."""
        if activation == "gelu":
            y = F.gelu(y)
        elif activation is not None:
            raise ValueError(f"activation must be None or 'gelu', not {activation!r}")
        return y if residual is None else y + residual

    def _threshold(self) -> Tensor:
        raise NotImplementedError

    def _alpha(self) -> Tensor:
        raise NotImplementedError

    def core_params(self) -> CoreParams:
        with torch.no_grad():
            return CoreParams(
                self._threshold().detach().clone(),
                torch.where(self.weight >= 0, 1.0, -1.0),
                (self._alpha() * weight_scale(self.weight)).detach().clone(),
                None if self.bias is None else self.bias.detach().clone(),
            )

    def core(self, x: Tensor) -> Tensor:
        if self.core_override is not None:
            return self.core_override(self, x)
        xs = sign_ste(x - self._threshold())
        y = F.linear(xs, sign_ste(self.weight)) * (self._alpha() * weight_scale(self.weight))
        return y if self.bias is None else y + self.bias


class ScalesLinear(BinaryLinearBase):
    """SCALES binary linear layer for Transformers: LSF + per-token spatial re-scaling.

    ``Y = core(X) * sigmoid(linear_{C_in -> 1}(X))`` (+ ``X`` when ``skip`` and the widths match),
    with the caller's :meth:`prologue` (a LayerNorm of ``X``) before and :meth:`epilogue` (an
    activation, a residual add) after. There is no channel branch: LayerNorm already removes the
    channel-to-channel variation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        lsf: bool = True,
        spatial: bool = True,
        skip: bool = False,
    ) -> None:
        super().__init__(in_features, out_features, bias)
        self.lsf = lsf
        if lsf:
            self.alpha = nn.Parameter(torch.ones(()))
            self.beta = nn.Parameter(torch.zeros(in_features))
        else:
            self.register_buffer("alpha", torch.ones(()))
            self.register_buffer("beta", torch.zeros(in_features))
        self.spatial = nn.Linear(in_features, 1) if spatial else None
        self.skip = bool(skip and in_features == out_features)

    def _threshold(self) -> Tensor:
        return self.beta

    def _alpha(self) -> Tensor:
        return self.alpha

    def forward(
        self, x: Tensor, activation: str | None = None, residual: Tensor | None = None, norm: nn.Module | None = None
    ) -> Tensor:
        x = self.prologue(x, norm)
        y = self.core(x)
        if self.spatial is not None:
            y = y * torch.sigmoid(self.spatial(x))
        if self.skip:
            y = y + x
        return self.epilogue(y, activation, residual)


class BiBERTLinear(BinaryLinearBase):
    """BiBERT-style baseline binary linear: ``sign(X) @ (mean|W_r| sign(W))^T + b``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.register_buffer("beta", torch.zeros(in_features), persistent=False)

    def _threshold(self) -> Tensor:
        return self.beta

    def _alpha(self) -> Tensor:
        return torch.ones((), device=self.weight.device)

    def forward(
        self, x: Tensor, activation: str | None = None, residual: Tensor | None = None, norm: nn.Module | None = None
    ) -> Tensor:
        return self.epilogue(self.core(self.prologue(x, norm)), activation, residual)


@dataclass(frozen=True)
class BinarySpec:
    """How a model's body layers are binarized; models build every body conv/linear through it.

    ``kind`` is one of ``scales``, ``e2fif`` (CNN baseline), ``bibert`` (Transformer baseline) and
    ``fp`` (full precision). ``e2fif`` on a linear layer means ``bibert`` and vice versa, so one
    baseline name works for every arch. The switches only apply to ``scales``.
    """

    kind: str = "scales"
    lsf: bool = True
    spatial: bool = True
    channel: bool = True
    skip: bool = True

    def __post_init__(self) -> None:
        if self.kind not in BINARY_KINDS:
            raise ValueError(f"unknown binarization {self.kind!r}; choose one of {', '.join(BINARY_KINDS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def conv(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        bias: bool = True,
        *,
        ends_residual: bool = False,
    ) -> nn.Module:
        """A body convolution. ``ends_residual=True`` marks the last conv of a residual branch
        (``x + branch(x)``): the branch's own add already carries the identity of ``x``, so the
        conv gets no skip of its own. Otherwise each block would add ``x`` twice and the features
        would double from block to block (2^16 after SRResNet's 16 blocks)."""
        if self.kind == "fp":
            pad = dilation * (kernel_size - 1) // 2
            return nn.Conv2d(in_channels, out_channels, kernel_size, stride, pad, dilation, bias=bias)
        skip = self.skip and not ends_residual
        if self.kind in ("e2fif", "bibert"):
            return E2FIFConv2d(in_channels, out_channels, kernel_size, stride, None, dilation, bias, skip=skip)
        return ScalesConv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            None,
            dilation,
            bias,
            lsf=self.lsf,
            spatial=self.spatial,
            channel=self.channel,
            skip=skip,
        )

    def upsampler(self, in_channels: int, out_channels: int, upscale: int) -> nn.Module:
        """A sub-pixel upsampling step as one layer: 3×3 conv ``in -> upscale²·out`` then
        ``PixelShuffle(upscale)``, binary with the skip of repeated input features (see the module
        docstring); for ``fp`` the plain conv and shuffle (``nn.Sequential``)."""
        cout = out_channels * upscale * upscale
        if self.kind == "fp":
            return nn.Sequential(nn.Conv2d(in_channels, cout, 3, 1, 1), nn.PixelShuffle(upscale))
        if self.kind in ("e2fif", "bibert"):
            return E2FIFConv2d(in_channels, cout, 3, skip=self.skip, upscale=upscale)
        return ScalesConv2d(
            in_channels, cout, 3, lsf=self.lsf, spatial=self.spatial, channel=self.channel, skip=self.skip,
            upscale=upscale,
        )

    def linear(self, in_features: int, out_features: int, bias: bool = True) -> nn.Module:
        if self.kind == "fp":
            return nn.Linear(in_features, out_features, bias=bias)
        if self.kind in ("e2fif", "bibert"):
            return BiBERTLinear(in_features, out_features, bias)
        return ScalesLinear(in_features, out_features, bias, lsf=self.lsf, spatial=self.spatial)


def binary_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The binary conv/linear layers of a model, in module order, with their qualified names."""
    return [
        (name, m)
        for name, m in model.named_modules()
        if isinstance(m, (BinaryConv2dBase, BinaryLinearBase))
    ]
