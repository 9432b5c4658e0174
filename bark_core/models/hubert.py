"""HuBERT-base features of a recording, in the form the voice-cloning quantizers were trained on.

The community method for a full Bark voice from a recording (gitmylo/bark-voice-cloning-HuBERT-quantizer)
feeds HuBERT-base hidden states into a small trained quantizer (:mod:`bark_core.models.quantizer`) that
predicts Bark's semantic tokens. The quantizer only gives Bark's tokens for the features it was trained
on, so this module reproduces that front end exactly:

* mono audio, band-limited sinc resampling (Hann window, 6 zero crossings, roll-off 0.99: the default of
  ``torchaudio.functional.resample`` the training data went through) from the recording's own rate to
  16 kHz, without loudness normalisation;
* HuBERT's convolutional framing (a 400-sample window every 320 samples: 50 frames a second, one
  frame fewer than 50 per second of audio, Bark's semantic rate being 49.9 Hz);
* the hidden state after the 9th transformer block of ``hubert_base_ls960`` (fairseq's
  ``output_layer=9``), not the last one.

The weights are the transformers port of that checkpoint, ``facebook/hubert-base-ls960`` (or a local
folder in the same layout). ``transformers`` is an optional dependency (the ``clone`` extra), imported
only when a HuBERT model is built.
"""

from __future__ import annotations

import importlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ArtifactError, CheckpointError, ExtraMissingError
from ..fileio import atomic_write
from .hf_files import resolve_hf_files
from .hf_format import _load_bin, _load_safetensors, state_dict_checksum
from .optional_import import import_despite_torchaudio

HUBERT_REPO = "facebook/hubert-base-ls960"
HUBERT_RATE = 16_000
FEATURE_LAYER = 9  # fairseq output_layer=9: the state after the 9th of 12 transformer blocks
FRAME_WINDOW = 400  # samples at 16 kHz seen by the first output frame (receptive field of the conv stack)
FRAME_HOP = 320  # samples at 16 kHz per output frame: 50 frames a second
CONV_KERNELS = (10, 3, 3, 3, 3, 2, 2)
CONV_STRIDES = (5, 2, 2, 2, 2, 2, 2)
RESAMPLE_ZERO_CROSSINGS = 6
RESAMPLE_ROLLOFF = 0.99
_WEIGHT_NORM = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}


def import_transformers(purpose: str) -> Any:
    """transformers' HuBERT module (``HubertModel``, ``HubertConfig``), or an error naming the extra that
    installs it. A broken torchaudio (a wheel built for another torch) does not stop it: transformers
    imports torchaudio only for file helpers HuBERT never calls."""
    try:
        importlib.import_module("transformers")
    except ImportError as exc:
        raise ExtraMissingError(
            f"{purpose} needs the optional package 'transformers' (HuBERT), which is not installed. Install the "
            "clone extra: pip install 'bark-stages[clone]' (it never changes your torch). Without it, make a "
            "partial voice with semantic='none' (coarse and fine prompts only)."
        ) from exc
    return import_despite_torchaudio("transformers.models.hubert.modeling_hubert")


def sinc_resample(wave: torch.Tensor, rate_from: int, rate_to: int, *,
                  zero_crossings: int = RESAMPLE_ZERO_CROSSINGS, rolloff: float = RESAMPLE_ROLLOFF) -> torch.Tensor:
    """Band-limited resampling of the last axis by windowed-sinc interpolation.

    Not :func:`bark_core.audio_io.resample` (scipy's polyphase filter): the quantizer's training data was
    resampled with torchaudio's default filter, and features of differently filtered audio drift enough
    to change tokens. The rate ratio is reduced to ``up/down``; each block of ``down`` input samples
    yields ``up`` outputs, output ``j`` of a block being the input convolved with a Hann-windowed sinc
    centred at ``j/up`` input periods, cut off at ``rolloff`` times the lower Nyquist rate and truncated
    after ``zero_crossings`` of its zeros. The kernel is built in the input's dtype, in the same order of
    operations as torchaudio, so float32 input gives the same numbers.
    """
    rate_from, rate_to = int(rate_from), int(rate_to)
    if rate_from <= 0 or rate_to <= 0:
        raise ArtifactError(f"Cannot resample from {rate_from} Hz to {rate_to} Hz; rates must be positive.")
    if rate_from == rate_to:
        return wave
    if not wave.is_floating_point():
        raise ArtifactError(f"resampling needs float samples, got {wave.dtype}.")
    g = math.gcd(rate_from, rate_to)
    down, up = rate_from // g, rate_to // g
    cutoff = min(down, up) * rolloff
    reach = math.ceil(zero_crossings * down / cutoff)  # input samples each side of a kernel's centre
    dtype, device = wave.dtype, wave.device
    offsets = torch.arange(-reach, reach + down, dtype=dtype, device=device)[None, None] / down
    phases = torch.arange(0, -up, -1, dtype=dtype, device=device)[:, None, None] / up
    t = (phases + offsets) * cutoff
    t = t.clamp_(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t *= math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), t.sin() / t)
    kernel *= window * (cutoff / down)

    shape = wave.shape
    n = shape[-1]
    flat = torch.nn.functional.pad(wave.reshape(-1, n), (reach, reach + down))
    out = torch.nn.functional.conv1d(flat[:, None], kernel, stride=down)  # (batch, up phases, blocks)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)[:, : math.ceil(up * n / down)]
    return out.reshape(*shape[:-1], out.shape[-1])


def n_frames(n_samples_16k: int) -> int:
    """HuBERT output frames for a 16 kHz input: one per 320 samples once the first 400 are in."""
    return 0 if n_samples_16k < FRAME_WINDOW else (n_samples_16k - FRAME_WINDOW) // FRAME_HOP + 1


@dataclass
class HubertFeatures:
    """A HuBERT model cut after its feature layer, plus what provenance says about it."""

    model: torch.nn.Module
    layer: int
    source: str
    checksum: str
    hidden_size: int
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> HubertFeatures:
        self.model.to(device)
        return self

    def __call__(self, samples: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Mono samples at ``sample_rate`` -> (frames, hidden_size) float32 features on the CPU."""
        wave = torch.as_tensor(np.asarray(samples, dtype=np.float32) if not torch.is_tensor(samples) else samples)
        if wave.ndim != 1:
            raise ArtifactError(f"HuBERT takes mono samples, shape (samples,), got {tuple(wave.shape)}.")
        wave16 = sinc_resample(wave.float(), sample_rate, HUBERT_RATE)
        if n_frames(wave16.shape[-1]) == 0:
            raise ArtifactError(
                f"{wave.shape[-1] / sample_rate * 1000:.0f} ms of audio is shorter than one HuBERT frame "
                f"({FRAME_WINDOW / HUBERT_RATE * 1000:.0f} ms); use a recording of a few seconds."
            )
        with torch.inference_mode():
            out = self.model(wave16[None].to(self.device)).last_hidden_state[0]
        return out.float().cpu()


def _fit_state(raw: dict[str, torch.Tensor], expected: set[str], layer: int, source: str) -> dict[str, torch.Tensor]:
    """Rename a stored HuBERT state dict to this transformers version's names and drop the blocks after
    ``layer`` (and the training-only mask embedding), naming anything else that does not fit."""
    out: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        if key.startswith("hubert."):  # a HubertForCTC (or similar) checkpoint: its base model
            key = key[len("hubert."):]
        for old, new in _WEIGHT_NORM.items():  # weight norm: old attribute names <-> parametrizations
            if key.endswith("." + old) and key not in expected and key.replace(old, new) in expected:
                key = key.replace(old, new)
            elif key.endswith("." + new) and key not in expected and key.replace(new, old) in expected:
                key = key.replace(new, old)
        parts = key.split(".")
        if key.startswith("encoder.layers.") and int(parts[2]) >= layer:
            continue
        if key == "masked_spec_embed" or (key not in expected and not key.startswith(("encoder.", "feature_"))):
            continue  # SpecAugment's mask vector and heads of fine-tuned models: unused for features
        out[key] = value
    missing = sorted(expected - set(out) - {"masked_spec_embed"})
    extra = sorted(set(out) - expected)
    if missing or extra:
        raise CheckpointError(
            f"{source} does not fit HuBERT's layout: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}. Use {HUBERT_REPO} (or a folder with its "
            "config.json and weights)."
        )
    return out


def load_hubert(source: str | os.PathLike = HUBERT_REPO, *, device: str | torch.device = "cpu",
                cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                layer: int = FEATURE_LAYER) -> HubertFeatures:
    """HuBERT base cut after ``layer``, from a hub repo id (downloaded once into the hub cache) or a local
    folder with ``config.json`` and ``model.safetensors`` (or ``pytorch_model.bin``, read with
    ``weights_only=True``)."""
    transformers = import_transformers("Semantic tokens from a recording")
    config_path, files = resolve_hf_files(source, cache_dir=cache_dir, local_files_only=local_files_only)
    try:
        data = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Cannot read {config_path} ({exc}); re-download it.") from exc
    name = str(source) if not Path(os.fspath(source)).expanduser().exists() else Path(source).name
    if data.get("model_type") != "hubert":
        raise CheckpointError(f"{name} is a {data.get('model_type')!r} model, not HuBERT. Use {HUBERT_REPO}.")
    config = transformers.HubertConfig.from_dict(data)
    if config.do_stable_layer_norm or config.feat_extract_norm != "group":
        raise CheckpointError(f"{name} is not a HuBERT-base model (the large and xlarge ones use another layer "
                              f"layout); the quantizers were trained on {HUBERT_REPO} features.")
    if config.num_hidden_layers < layer:
        raise CheckpointError(f"{name} has {config.num_hidden_layers} transformer layers; the quantizer reads "
                              f"the output of layer {layer}.")
    if tuple(config.conv_kernel) != CONV_KERNELS or tuple(config.conv_stride) != CONV_STRIDES:
        raise CheckpointError(f"{name} frames audio differently from HuBERT base (kernels {config.conv_kernel}, "
                              f"strides {config.conv_stride}); its features would not fit the quantizer.")
    config.num_hidden_layers = layer  # the blocks after the feature layer are never run, so never built
    with torch.random.fork_rng(devices=[]):
        model = transformers.HubertModel(config)
    raw: dict[str, torch.Tensor] = {}
    for path in files:
        loader = _load_safetensors if path.name.endswith(".safetensors") else _load_bin
        raw.update(loader(path, lambda key: key))
    state = _fit_state(raw, set(model.state_dict()), layer, name)
    model.load_state_dict(state, strict=False)
    model.eval().to(device)
    info = {"source": name, "layer": layer, "hidden_size": config.hidden_size, "sample_rate": HUBERT_RATE}
    return HubertFeatures(model=model, layer=layer, source=name, checksum=state_dict_checksum(state),
                          hidden_size=config.hidden_size, info=info)


def write_random_hubert(folder: str | os.PathLike, *, seed: int = 0, hidden_size: int = 32, layers: int = 10,
                        heads: int = 2, intermediate_size: int = 64, conv_dim: int = 16) -> Path:
    """A small untrained HuBERT in transformers' layout (config.json and model.safetensors, as
    ``save_pretrained`` writes them), with HuBERT base's framing and feature layer, for offline runs."""
    transformers = import_transformers("Writing a tiny HuBERT")
    config = transformers.HubertConfig(
        hidden_size=hidden_size, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=intermediate_size, conv_dim=(conv_dim,) * len(CONV_KERNELS), conv_kernel=CONV_KERNELS,
        conv_stride=CONV_STRIDES, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.HubertModel(config)
    from safetensors.torch import save as save_safetensors

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(folder / "model.safetensors") as fh:
        fh.write(save_safetensors(state, metadata={"format": "pt"}))
    with atomic_write(folder / "config.json") as fh:
        fh.write(config.to_json_string().encode())
    return folder
