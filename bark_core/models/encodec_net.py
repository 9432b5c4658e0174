"""EnCodec 24 kHz as plain PyTorch modules: SEANet encoder and decoder, residual vector quantizer.

Why a port: Meta's ``encodec`` package declares ``torchaudio`` (unpinned) as a dependency, and pip
resolving it in an environment without torchaudio picks the newest one, which pins another exact
torch, so installing bark_core could replace the user's torch. The network is small and fixed
(causal SEANet, 32 filters, strides 2-4-5-8, a 2-layer LSTM, 32 codebooks of 1024 x 128), so we
build it here from ``torch.nn`` alone.

The module tree mirrors the parameter names of Meta's checkpoint ``encodec_24khz-d7cc33bc.th``
(``encoder.model.0.conv.conv.weight_g`` ..., ``quantizer.vq.layers.0._codebook.embed``), so that
file loads with ``load_state_dict(strict=True)`` and needs no key mapping; the transformers-format
layout (``facebook/encodec_24khz``) is mapped onto it by :func:`state_dict_from_hf`.

Weight normalisation is stored as Meta stores it: a direction ``weight_v`` and a magnitude
``weight_g`` per output slice (dim 0); the kernel used is ``g * v / |v|``. Padding follows the
causal streaming convolutions of the reference: reflect padding on the left, and just enough on
the right that the last window is complete; transposed convolutions trim their overlap on the right.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn

from .device import return_freed_memory

SAMPLE_RATE = 24_000
CHANNELS = 1
N_FILTERS = 32
DIMENSION = 128  # latent width = codebook vector width
RATIOS = (8, 5, 4, 2)  # decoder upsampling order; the encoder downsamples in reverse
HOP_LENGTH = math.prod(RATIOS)  # 320 samples per frame
FRAME_RATE = math.ceil(SAMPLE_RATE / HOP_LENGTH)  # 75 Hz
N_QUANTIZERS = 32
CODEBOOK_SIZE = 1024
BANDWIDTHS = (1.5, 3.0, 6.0, 12.0, 24.0)  # kbps; 10 bits per code per frame
# The decoder's upsampling tail runs over 2 s of frames at a time: its activations (a 5 s take's last
# layers hold 15 MB tensors, 125 MB at the peak) would otherwise grow with the take. Every block also
# reads 4 frames before it: each output sample depends on less than
# 2 frames of the past (causal convolutions; measured: 1 frame is too few, 2 already enough).
DECODE_CHUNK_FRAMES = 150
DECODE_CONTEXT_FRAMES = 4


# ---------------------------------------------------------------------------------------------
# Convolutions with weight normalisation and causal padding
# ---------------------------------------------------------------------------------------------


class _WeightNormed(nn.Module):
    """The parameters of one weight-normalised (transposed) convolution, named as in Meta's file."""

    def __init__(self, weight_shape: tuple[int, int, int], n_bias: int, *, transposed: bool, stride: int = 1,
                 dilation: int = 1):
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(weight_shape[0], 1, 1))
        self.weight_v = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.zeros(n_bias))
        self.transposed = transposed
        self.stride = stride
        self.dilation = dilation

    @property
    def kernel_size(self) -> int:
        return self.weight_v.shape[-1]

    def weight(self) -> torch.Tensor:
        # same arithmetic as torch's weight_norm kernel: v * (g / ||v||), the norm over all but dim 0
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose1d(x, self.weight(), self.bias, stride=self.stride)
        return F.conv1d(x, self.weight(), self.bias, stride=self.stride, dilation=self.dilation)

    def reset_random_(self, gen: torch.Generator) -> None:
        """torch's default conv init (uniform in +-1/sqrt(fan_in)), then g = |v| as weight_norm starts."""
        fan_in = self.weight_v.shape[1] * self.kernel_size  # torch's rule, for (out, in, k) and (in, out, k) alike
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            self.weight_v.uniform_(-bound, bound, generator=gen)
            self.bias.uniform_(-bound, bound, generator=gen)
            self.weight_g.copy_(torch.linalg.vector_norm(self.weight_v, dim=(1, 2), keepdim=True))


class _Wrap(nn.Module):
    """One naming level of the reference (its norm wrapper), so parameter names line up."""

    def __init__(self, inner: nn.Module, name: str):
        super().__init__()
        self.add_module(name, inner)
        self._inner_name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self._inner_name)(x)


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the signal is not longer than the pad (zeros extend it first)."""
    length = x.shape[-1]
    widest = max(left, right)
    if length > widest:
        return F.pad(x, (left, right), mode="reflect")
    grow = widest - length + 1
    padded = F.pad(F.pad(x, (0, grow)), (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - grow]


class CausalConv1d(nn.Module):
    """Convolution that sees only the past: ``(k - 1) * d - (s - 1)`` samples padded on the left."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        core = _WeightNormed((c_out, c_in, kernel), c_out, transposed=False, stride=stride, dilation=dilation)
        self.conv = _Wrap(core, "conv")

    @property
    def core(self) -> _WeightNormed:
        return self.conv.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        core = self.core
        k, s, d = core.kernel_size, core.stride, core.dilation
        left = (k - 1) * d - (s - 1)
        length = x.shape[-1]
        frames = (length - k + left) / s + 1
        right = (math.ceil(frames) - 1) * s + (k - left) - length  # complete the last window
        return core(_reflect_pad(x, left, right))


class CausalConvTranspose1d(nn.Module):
    """Upsampling by ``stride``; the ``kernel - stride`` overlapping samples are cut on the right."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__()
        core = _WeightNormed((c_in, c_out, kernel), c_out, transposed=True, stride=stride)
        self.convtr = _Wrap(core, "convtr")

    @property
    def core(self) -> _WeightNormed:
        return self.convtr.convtr

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.core(x)
        cut = self.core.kernel_size - self.core.stride
        return y[..., : y.shape[-1] - cut]


class ResidualUnit(nn.Module):
    """ELU -> conv k3 (to half width) -> ELU -> conv k1 (back), plus a 1x1 convolution as the skip path."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        hidden = dim // 2
        self.block = nn.Sequential(nn.ELU(), CausalConv1d(dim, hidden, 3, dilation=dilation), nn.ELU(),
                                   CausalConv1d(hidden, dim, 1))
        self.shortcut = CausalConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class RecurrentSkip(nn.Module):
    """Two LSTM layers over time with a residual connection; takes and returns (batch, channels, time)."""

    def __init__(self, dim: int, layers: int = 2):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.permute(2, 0, 1)
        out, _ = self.lstm(seq)
        return (out + seq).permute(1, 2, 0)


class Encoder(nn.Module):
    """Waveform (B, 1, n) -> latent (B, 128, ceil(n / 320))."""

    def __init__(self) -> None:
        super().__init__()
        width = N_FILTERS
        layers: list[nn.Module] = [CausalConv1d(CHANNELS, width, 7)]
        for ratio in reversed(RATIOS):
            layers += [ResidualUnit(width), nn.ELU(), CausalConv1d(width, width * 2, 2 * ratio, stride=ratio)]
            width *= 2
        layers += [RecurrentSkip(width), nn.ELU(), CausalConv1d(width, DIMENSION, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """Latent (B, 128, T) -> waveform (B, 1, 320 * T)."""

    def __init__(self) -> None:
        super().__init__()
        width = N_FILTERS * 2 ** len(RATIOS)
        layers: list[nn.Module] = [CausalConv1d(DIMENSION, width, 7), RecurrentSkip(width)]
        for ratio in RATIOS:
            layers += [nn.ELU(), CausalConvTranspose1d(width, width // 2, 2 * ratio, ratio), ResidualUnit(width // 2)]
            width //= 2
        layers += [nn.ELU(), CausalConv1d(width, CHANNELS, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """``chunk_frames``: run the upsampling tail over blocks of that many frames (None: whole).

        Blocked output equals the whole-signal one up to float rounding (kernels block a shorter input
        differently: about 1e-7, far below a 16-bit step); a take of at most one block is unchanged.
        """
        if chunk_frames is not None and chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
        head, tail = self.model[:2], self.model[2:]
        x = head(z)  # the LSTM carries state over the whole take; at 75 Hz this part is small
        frames = x.shape[-1]
        if chunk_frames is None or frames <= chunk_frames:
            return tail(x)
        out = x.new_empty(x.shape[0], CHANNELS, frames * HOP_LENGTH)
        # every block reads the same number of frames (the first has no context, so it writes more):
        # same-sized temporaries reuse the heap blocks the previous block freed, instead of growing it
        start, end = 0, min(frames, chunk_frames + DECODE_CONTEXT_FRAMES)
        while start < frames:
            first = max(0, start - DECODE_CONTEXT_FRAMES)
            block = tail(x[..., first:end])
            out[..., start * HOP_LENGTH:end * HOP_LENGTH] = block[..., (start - first) * HOP_LENGTH:]
            del block  # before the next block is made, so only one is ever held
            if x.device.type == "cpu":
                return_freed_memory()
            start, end = end, min(frames, end + chunk_frames)
        return out


# ---------------------------------------------------------------------------------------------
# Residual vector quantizer
# ---------------------------------------------------------------------------------------------


class Codebook(nn.Module):
    """1024 vectors; a latent frame's code is its nearest vector (Euclidean).

    ``inited``, ``cluster_size`` and ``embed_avg`` are training state; they are kept only so the
    published checkpoint loads strictly (and is written back complete).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("inited", torch.ones(1))
        self.register_buffer("cluster_size", torch.zeros(CODEBOOK_SIZE))
        self.register_buffer("embed", torch.zeros(CODEBOOK_SIZE, DIMENSION))
        self.register_buffer("embed_avg", torch.zeros(CODEBOOK_SIZE, DIMENSION))

    def nearest(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) indices; the distance is expanded as |x|^2 - 2 x.e + |e|^2, as the reference does."""
        book = self.embed.t()
        score = -(frames.pow(2).sum(1, keepdim=True) - 2 * frames @ book + book.pow(2).sum(0, keepdim=True))
        return score.max(dim=-1).indices


class _Quantizer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self._codebook = Codebook()


class _Stack(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Quantizer() for _ in range(N_QUANTIZERS))


class ResidualQuantizer(nn.Module):
    """Each codebook quantizes what the previous ones left over; fewer codebooks = lower bandwidth."""

    def __init__(self) -> None:
        super().__init__()
        self.vq = _Stack()

    def books(self, n_q: int) -> list[Codebook]:
        return [layer._codebook for layer in self.vq.layers[:n_q]]

    def encode(self, latent: torch.Tensor, n_q: int) -> torch.Tensor:
        """(B, D, T) latent -> (n_q, B, T) codes."""
        batch, _, frames = latent.shape
        residual = latent.transpose(1, 2)  # (B, T, D)
        codes = []
        for book in self.books(n_q):
            idx = book.nearest(residual.reshape(-1, DIMENSION)).view(batch, frames)
            residual = residual - F.embedding(idx, book.embed)
            codes.append(idx)
        return torch.stack(codes)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(n_q, B, T) codes -> (B, D, T): the sum of one vector per codebook (Suno's codec_decode calls this)."""
        total = torch.tensor(0.0, device=codes.device)
        for book, idx in zip(self.books(codes.shape[0]), codes, strict=True):
            total = total + F.embedding(idx, book.embed).transpose(1, 2)
        return total


# ---------------------------------------------------------------------------------------------
# The codec
# ---------------------------------------------------------------------------------------------


def quantizers_for(bandwidth: float) -> int:
    """How many codebooks a bandwidth in kbps allows (6 kbps -> 8, 1.5 kbps -> 2)."""
    per_book = math.log2(CODEBOOK_SIZE) * FRAME_RATE / 1000
    return int(max(1, math.floor(bandwidth / per_book)))


class EncodecNet(nn.Module):
    """EnCodec 24 kHz mono, causal, no loudness normalisation, whole-signal (unsegmented) coding."""

    sample_rate = SAMPLE_RATE
    frame_rate = FRAME_RATE

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.quantizer = ResidualQuantizer()
        self.bandwidth: float = BANDWIDTHS[-1]

    def set_target_bandwidth(self, bandwidth: float) -> None:
        if bandwidth not in BANDWIDTHS:
            raise ValueError(f"EnCodec 24 kHz has no {bandwidth} kbps mode; use one of {BANDWIDTHS}.")
        self.bandwidth = float(bandwidth)

    def encode_codes(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 1, n) waveform -> (B, n_q, ceil(n / 320)) codes at the target bandwidth."""
        if wav.dim() != 3 or wav.shape[1] != CHANNELS:
            raise ValueError(f"encode_codes takes (batch, 1, samples), got {tuple(wav.shape)}")
        return self.quantizer.encode(self.encoder(wav), quantizers_for(self.bandwidth)).transpose(0, 1)

    def decode_codes(self, codes: torch.Tensor, chunk_frames: int | None = DECODE_CHUNK_FRAMES) -> torch.Tensor:
        """(B, n_q, T) codes -> (B, 1, 320 * T) waveform; any n_q up to 32 (``chunk_frames``: Decoder)."""
        return self.decoder(self.quantizer.decode(codes.transpose(0, 1)), chunk_frames)

    def reset_random_(self, gen: torch.Generator, codebook_scale: float = 0.03) -> EncodecNet:
        """Untrained weights from ``gen`` alone (never the global RNG), with filled codebooks so codes vary."""
        for module in self.modules():
            if isinstance(module, _WeightNormed):
                module.reset_random_(gen)
            elif isinstance(module, nn.LSTM):
                bound = 1.0 / math.sqrt(module.hidden_size)
                with torch.no_grad():
                    for param in module.parameters():
                        param.uniform_(-bound, bound, generator=gen)
            elif isinstance(module, Codebook):
                with torch.no_grad():
                    module.embed.copy_(torch.randn(module.embed.shape, generator=gen) * codebook_scale)
                    module.embed_avg.copy_(module.embed)
                    module.cluster_size.fill_(1.0)
                    module.inited.fill_(1.0)
        return self


# ---------------------------------------------------------------------------------------------
# The transformers layout (facebook/encodec_24khz model.safetensors)
# ---------------------------------------------------------------------------------------------

_HF_PARAM = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}


def state_dict_from_hf(state: dict[str, torch.Tensor], model: EncodecNet) -> dict[str, torch.Tensor]:
    """Rename transformers' ``EncodecModel`` keys to Meta's, using ``model`` to tell convolutions apart.

    transformers names every convolution ``<layer>.conv`` (Meta: ``.conv.conv`` or, transposed,
    ``.convtr.convtr``), calls the stacks ``layers`` (Meta: ``model``), the codebooks
    ``quantizer.layers.N.codebook`` (Meta: ``quantizer.vq.layers.N._codebook``), and newer versions
    store weight norm as ``parametrizations.weight.original0/1``. Keys it does not know pass through
    unchanged so a strict load names them.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key
        for old, meta in _HF_PARAM.items():
            new = new.replace(old, meta)
        match = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.(.*)", new)
        if match:
            side, index, rest = match.groups()
            layer = getattr(model, side).model[int(index)]
            if rest.startswith("conv.") and isinstance(layer, CausalConvTranspose1d):
                rest = "convtr.convtr." + rest[len("conv."):]
            elif rest.startswith("conv."):
                rest = "conv.conv." + rest[len("conv."):]
            elif rest.startswith(("block.", "shortcut.")):
                rest = re.sub(r"^(block\.\d+|shortcut)\.conv\.", r"\1.conv.conv.", rest)
            new = f"{side}.model.{index}.{rest}"
        new = re.sub(r"^quantizer\.layers\.(\d+)\.codebook\.", r"quantizer.vq.layers.\1._codebook.", new)
        out[new] = value
    return out


def looks_like_hf(state: dict[str, torch.Tensor]) -> bool:
    return any(k.startswith(("encoder.layers.", "decoder.layers.", "quantizer.layers.")) for k in state)
