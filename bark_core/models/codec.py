"""EnCodec 24 kHz at 6 kbps: fine codes <-> waveform, with our own port of the network.

Bark's last stage is Suno's ``codec_decode``: the 8 fine codebooks go through EnCodec's residual
quantizer and decoder at 6 kbps. :func:`decode` does exactly that; :func:`encode` goes the other way
(reference audio -> codes) for building voices.

The network is :class:`~bark_core.models.encodec_net.EncodecNet`, not Meta's ``encodec`` package:
that package's metadata requires ``torchaudio`` without a version, and pip then may replace the
user's torch to satisfy the newest torchaudio. Our port gives the same codes and samples (the tests
compare it with ``encodec`` on random weights) and reads the same files:

* Meta's ``encodec_24khz-d7cc33bc.th`` (a plain state dict), through :func:`~bark_core.models.suno.safe_torch_load`
  (``weights_only=True``: a file cannot run code). Without a path it is downloaded once from Meta's
  server into torch hub's checkpoints folder (where ``encodec`` kept it too) and read from there
  afterwards, offline as well; a failed download raises a
  :class:`~bark_core.errors.CheckpointError` saying where to put a local copy.
* transformers' ``facebook/encodec_24khz`` (``model.safetensors``, or its folder), keys renamed.

Models are not cached here: :func:`load_codec` builds a new one per call (about a second for the
real weights) and the caller (the model registry, a front end) keeps it as long as it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import constants as C
from .. import limits
from ..artifacts import Audio, FineCodes, Provenance, expect_artifact
from ..audio_io import resample
from ..errors import ArtifactError, CheckpointError
from ..fileio import atomic_write
from ..hub import file_sha256, public_file_id
from .encodec_net import EncodecNet, looks_like_hf, state_dict_from_hf
from .suno import safe_torch_load

HOP_LENGTH = 320  # samples per EnCodec frame at 24 kHz (75 frames per second)
CODEC_NAME = "encodec_24khz"
HF_WEIGHTS = "model.safetensors"  # the file of facebook/encodec_24khz (transformers layout)
_HASH_PREFIX = C.ENCODEC_CHECKPOINT_NAME.rsplit("-", 1)[1].split(".")[0]  # "d7cc33bc": sha256 prefix of the file


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def hub_checkpoint_path() -> Path:
    """Where torch.hub keeps (and looks for) the pretrained EnCodec file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / C.ENCODEC_CHECKPOINT_NAME


def _finish(model: EncodecNet, device: str | torch.device, source: str, checksum: str | None) -> EncodecNet:
    model.set_target_bandwidth(C.ENCODEC_BANDWIDTH)
    model.eval()
    model.to(device)
    # Recorded in the provenance of what decode()/encode() produce.
    model.bark_core_source = source
    model.bark_core_checksum = checksum
    return model


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a torch file (safe loader) or a safetensors file; errors name the file and the fix."""
    fix = (f"Use {C.ENCODEC_CHECKPOINT_NAME} (download it from {C.ENCODEC_CHECKPOINT_URL}) or the {HF_WEIGHTS} "
           "of facebook/encodec_24khz.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = safe_torch_load(path)
    except Exception as exc:  # CheckpointError of the safe loader, safetensors' own errors
        raise CheckpointError(f"Cannot read the EnCodec checkpoint {path} ({type(exc).__name__}: {exc}). "
                              f"It must hold plain weights. {fix}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"The EnCodec checkpoint {path} holds a {type(state).__name__}, not a state dict "
                              f"of tensors. {fix}")
    return state


def _load_file(path: Path) -> EncodecNet:
    state = _read_state(path)
    with torch.device("meta"):  # no memory and no random draws for weights about to be replaced
        model = EncodecNet()
    if looks_like_hf(state):
        state = state_dict_from_hf(state, model)
    expected, got = set(model.state_dict()), set(state)
    missing, extra = sorted(expected - got), sorted(got - expected)
    if missing or extra:
        raise CheckpointError(
            f"The EnCodec checkpoint {path} does not fit the 24 kHz model: missing {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}. "
            f"Use {C.ENCODEC_CHECKPOINT_NAME} ({C.ENCODEC_CHECKPOINT_URL})."
        )
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"The EnCodec checkpoint {path} has tensors of the wrong shape: {exc}") from exc
    return model


def _download_pretrained() -> Path:
    """Meta's file in torch hub's checkpoints folder, fetched once (sha256 prefix checked)."""
    cached = hub_checkpoint_path()
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(C.ENCODEC_CHECKPOINT_URL, str(cached), hash_prefix=_HASH_PREFIX)
    except Exception as exc:  # URLError, socket timeouts, HTTP errors, hash mismatch of a partial file
        raise CheckpointError(
            f"Could not get the EnCodec checkpoint {C.ENCODEC_CHECKPOINT_NAME} from {C.ENCODEC_CHECKPOINT_URL} "
            f"({type(exc).__name__}: {exc}). Fix: download it on a machine with network access and either put it at "
            f"{cached} (the torch hub checkpoints folder; TORCH_HOME moves it) or pass "
            f"load_codec(checkpoint='path/to/{C.ENCODEC_CHECKPOINT_NAME}')."
        ) from exc
    return cached


def load_codec(device: str | torch.device = "cpu", checkpoint: str | os.PathLike | None = None) -> EncodecNet:
    """Load EnCodec 24 kHz set to 6 kbps, in eval mode, on ``device``.

    ``checkpoint``: Meta's ``encodec_24khz-d7cc33bc.th`` (or any state dict in its layout), a
    transformers-format ``model.safetensors``, or a folder holding one of them. Without it, Meta's
    file is downloaded once into ``<torch hub dir>/checkpoints`` and read from there afterwards.
    Each call builds a new model; keep it if you need it again.
    """
    if checkpoint is None:
        path = _download_pretrained()
        return _finish(_load_file(path), device, C.ENCODEC_CHECKPOINT_NAME, file_sha256(path))
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        inside = [path / C.ENCODEC_CHECKPOINT_NAME, path / HF_WEIGHTS]
        path = next((p for p in inside if p.is_file()), inside[0])
    if not path.is_file():
        raise CheckpointError(
            f"No EnCodec checkpoint at {path}. Pass the path of {C.ENCODEC_CHECKPOINT_NAME} (download it from "
            f"{C.ENCODEC_CHECKPOINT_URL}), or checkpoint=None to use the torch hub cache."
        )
    checksum = file_sha256(path)
    return _finish(_load_file(path), device, public_file_id(path, checksum), checksum)


def random_codec(seed: int = 0) -> EncodecNet:
    """An untrained EnCodec 24 kHz model with random weights and random codebooks, for tests.

    Drawn from its own generator, so the global random state is left alone. The codebooks are
    filled (a fresh model has all-zero codebooks awaiting k-means) at about the scale of the
    untrained encoder's output, so encode gives varied codes and decode gives (noise-like) sound.
    """
    with torch.random.fork_rng(devices=[]):  # building nn.LSTM draws from the global generator
        model = EncodecNet().reset_random_(torch.Generator().manual_seed(seed))
    return _finish(model, "cpu", f"random-encodec-seed{seed}", None)


def write_random_codec(path: str | os.PathLike, seed: int = 0) -> Path:
    """Write :func:`random_codec` as a state-dict file in the real checkpoint's format.

    About 93 MB (fp32, all 32 codebooks, as the real file). ``load_codec(checkpoint=path)`` reads it.
    """
    path = Path(path)
    state = random_codec(seed).state_dict()
    with atomic_write(path) as fh:
        torch.save(state, fh)
    return path


# ---------------------------------------------------------------------------------------------
# Decode / encode
# ---------------------------------------------------------------------------------------------


def _device_of(codec: torch.nn.Module) -> torch.device:
    try:
        return next(codec.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def decode_codes(codes: np.ndarray, codec: EncodecNet) -> np.ndarray:
    """(n_codebooks, T) codes -> T*320 float32 samples.

    EnCodec's residual quantizer sums one embedding per codebook, so fewer codebooks is the same
    codec at a lower bandwidth (2 codebooks = 1.5 kbps): that is what makes a coarse preview exact.
    """
    device = _device_of(codec)
    with torch.inference_mode():
        arr = torch.from_numpy(np.ascontiguousarray(codes))[None].to(device)  # (1, n_q, T)
        out = codec.decode_codes(arr)
        return out.detach().float().cpu().numpy().reshape(-1).astype(np.float32)


def decode(fine: FineCodes, codec: EncodecNet) -> Audio:
    """Fine codes (8, T) -> 24 kHz mono float32 audio of T*320 samples: Suno's ``codec_decode``."""
    expect_artifact(fine, FineCodes, "decode")
    samples = decode_codes(fine.codes, codec)
    return Audio(provenance=decode_provenance(fine, codec), parent=fine, samples=samples.astype(np.float32),
                 sample_rate=C.SAMPLE_RATE)


def decode_provenance(fine: FineCodes, codec: EncodecNet, **settings: Any) -> Provenance:
    """The provenance of audio decoded from ``fine`` by ``codec`` (``settings`` add to the bandwidth)."""
    return Provenance(
        stage="decode",
        model=getattr(codec, "bark_core_source", CODEC_NAME),
        model_checksum=getattr(codec, "bark_core_checksum", None),
        settings={"bandwidth": C.ENCODEC_BANDWIDTH, **settings},
        voice=fine.provenance.voice,
        parent=fine.id,
        lineage=fine.lineage_ids(),
    )


def _mono_float(samples: np.ndarray) -> np.ndarray:
    """Mix to mono; integer PCM is scaled to [-1, 1]. A 2-D array's shorter axis is the channel axis."""
    arr = np.asarray(samples)
    if arr.ndim == 2:
        arr = arr.mean(axis=0 if arr.shape[0] <= arr.shape[1] else 1)
    elif arr.ndim != 1:
        raise ArtifactError(f"audio to encode must be 1-D (samples) or 2-D (channels, samples), got shape {arr.shape}.")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64) / float(-np.iinfo(arr.dtype).min)
    elif not np.issubdtype(arr.dtype, np.floating):
        raise ArtifactError(f"audio to encode must be numeric, got dtype {arr.dtype}.")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ArtifactError("audio to encode contains NaN or infinite values.")
    return arr


def encode(audio: Audio | np.ndarray, codec: EncodecNet, sample_rate: int | None = None) -> FineCodes:
    """Audio -> EnCodec codes (8, ceil(n/320)) at 6 kbps, e.g. to make a voice from a recording.

    ``audio`` is an :class:`Audio` (its own sample rate is used) or an array with ``sample_rate``
    given: mono (samples,), or (channels, samples) / (samples, channels), mixed down to mono.
    Resampling to 24 kHz is polyphase (``audio_io.resample``, scipy; no torchaudio).
    """
    parent: Audio | None = None
    if sample_rate is not None:
        sample_rate = limits.sample_rate(sample_rate, error=ArtifactError)
    if isinstance(audio, Audio):
        if sample_rate is not None and sample_rate != audio.sample_rate:
            raise ArtifactError(
                f"sample_rate={sample_rate} contradicts the Audio's own rate {audio.sample_rate}; leave it out."
            )
        parent, samples, sr = audio, audio.samples, audio.sample_rate
    elif isinstance(audio, np.ndarray):
        if sample_rate is None:
            raise ArtifactError("encode() needs sample_rate=<Hz> with a bare array; an Audio carries its own.")
        samples, sr = _mono_float(audio), int(sample_rate)
    else:
        raise ArtifactError(f"encode() takes an Audio or a numpy array, got {type(audio).__name__}.")
    if samples.shape[0] == 0:
        raise ArtifactError("audio to encode is empty.")
    if samples.shape[0] / sr > limits.MAX_STAGE_S:
        raise ArtifactError(f"audio to encode lasts {samples.shape[0] / sr:.1f} s; EnCodec here takes at most "
                            f"{limits.MAX_STAGE_S:g} s at once (a voice uses the last 10 s). Trim it first.")
    if sr != C.SAMPLE_RATE:
        samples = resample(samples, sr, C.SAMPLE_RATE).astype(np.float32)
    device = _device_of(codec)
    with torch.inference_mode():
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)[None, None]
        codes_np = codec.encode_codes(wav)[0].cpu().numpy().astype(np.int64)
    prov = Provenance(
        stage="encode",
        model=getattr(codec, "bark_core_source", CODEC_NAME),
        model_checksum=getattr(codec, "bark_core_checksum", None),
        settings={"bandwidth": C.ENCODEC_BANDWIDTH, "source_sample_rate": sr},
        parent=parent.id if parent is not None else None,
        lineage=parent.lineage_ids() if parent is not None else (),
    )
    return FineCodes(provenance=prov, parent=parent, codes=codes_np)
