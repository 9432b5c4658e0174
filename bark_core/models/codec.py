"""EnCodec 24 kHz at 6 kbps: fine codes <-> waveform, through Meta's ``encodec`` package.

Bark's last stage is Suno's ``codec_decode``: the 8 fine codebooks go through EnCodec's residual
quantizer and decoder at 6 kbps. :func:`decode` does exactly that; :func:`encode` goes the other way
(reference audio -> codes) for building voices.

Two practical problems are handled here:

* ``encodec`` imports ``torchaudio`` at import time, only for file helpers we never call. A
  ``torchaudio`` wheel that does not match the installed torch fails to load (``OSError``), and
  then ``import encodec`` fails too. :func:`import_encodec` imports ``encodec`` with a temporary
  placeholder in that case.
* The pretrained checkpoint is fetched by torch.hub from Meta's server; when that is unreachable
  the user gets a :class:`~bark_core.errors.CheckpointError` saying where to put a local copy.

Models are not cached here: :func:`load_codec` builds a new one per call (about a second for the
real weights) and the caller (the model registry, a front end) keeps it as long as it needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import os
import sys
import threading
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .. import constants as C
from ..artifacts import Audio, FineCodes, Provenance, expect_artifact
from ..audio_io import resample
from ..errors import ArtifactError, CheckpointError
from ..fileio import atomic_write

if TYPE_CHECKING:
    from encodec import EncodecModel

HOP_LENGTH = 320  # samples per EnCodec frame at 24 kHz (75 frames per second)
CODEC_NAME = "encodec_24khz"

_IMPORT_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# Importing encodec without a working torchaudio
# ---------------------------------------------------------------------------------------------


def _torchaudio_placeholder(error: BaseException) -> types.ModuleType:
    """A stand-in ``torchaudio`` whose every attribute explains why the real one is missing."""
    reason = f"{type(error).__name__}: {error}"
    module = types.ModuleType("torchaudio", "Placeholder installed by bark_core.codec.import_encodec.")
    module.__spec__ = importlib.machinery.ModuleSpec("torchaudio", loader=None)
    module.__file__ = None

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # keep hasattr()/inspect probes working
        raise ImportError(
            f"torchaudio.{name} is unavailable: torchaudio could not be imported ({reason}). "
            "bark_core does not need it (EnCodec's file helpers use it); install a torchaudio build that "
            "matches your torch if you want those helpers."
        )

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def _forget_modules(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


def import_encodec() -> types.ModuleType:
    """Import and return the ``encodec`` package even where ``torchaudio`` is missing or broken.

    The placeholder stays referenced inside ``encodec.utils``; calling one of encodec's file
    helpers raises an ImportError naming the original torchaudio failure.
    """
    return import_despite_torchaudio("encodec")


def import_despite_torchaudio(name: str) -> types.ModuleType:
    """Import module ``name`` (encodec, transformers' HuBERT) even where ``torchaudio`` is missing or broken.

    ``torchaudio`` is probed first. If importing it raises anything (``ModuleNotFoundError``, the
    ``OSError`` of a wheel built for another torch, ...), a placeholder module is put in
    ``sys.modules["torchaudio"]`` only while ``name`` is imported, then the previous state is
    restored, so a later ``import torchaudio`` elsewhere still fails with the real error. Errors of
    the module itself (not installed, broken) propagate unchanged.
    """
    module = sys.modules.get(name)
    if module is not None:
        return module
    with _IMPORT_LOCK:
        module = sys.modules.get(name)
        if module is not None:
            return module
        try:
            import torchaudio  # noqa: F401
        except Exception as exc:  # any failure inside torchaudio's own import
            torchaudio_error: BaseException | None = exc
        else:
            torchaudio_error = None
        _forget_modules(name)  # leftovers of an earlier failed attempt
        if torchaudio_error is None:
            return _import_or_clean(name)

        missing = object()
        previous = sys.modules.get("torchaudio", missing)
        sys.modules["torchaudio"] = _torchaudio_placeholder(torchaudio_error)
        try:
            return _import_or_clean(name)
        finally:
            if previous is missing:
                sys.modules.pop("torchaudio", None)
            else:
                sys.modules["torchaudio"] = previous  # type: ignore[assignment]


def _import_or_clean(name: str) -> types.ModuleType:
    """Import ``name``; on failure drop its half-imported submodules and re-raise the error unchanged."""
    try:
        return importlib.import_module(name)
    except BaseException:
        _forget_modules(name)
        raise


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_weight_norm() -> Iterator[None]:
    """encodec uses ``torch.nn.utils.weight_norm``, deprecated (but working) in current torch."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*weight_norm.*", category=UserWarning)
        yield


def _build_model() -> EncodecModel:
    """The untrained 24 kHz architecture; ``pretrained=False`` builds layers only, no network."""
    encodec = import_encodec()
    with _quiet_weight_norm():
        return encodec.EncodecModel.encodec_model_24khz(pretrained=False)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hub_checkpoint_path() -> Path:
    """Where torch.hub keeps (and looks for) the pretrained EnCodec file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / C.ENCODEC_CHECKPOINT_NAME


def _finish(model: EncodecModel, device: str | torch.device, source: str, checksum: str | None) -> EncodecModel:
    model.set_target_bandwidth(C.ENCODEC_BANDWIDTH)
    model.eval()
    model.to(device)
    # Recorded in the provenance of what decode()/encode() produce.
    model.bark_core_source = source
    model.bark_core_checksum = checksum
    return model


def load_codec(device: str | torch.device = "cpu", checkpoint: str | os.PathLike | None = None) -> EncodecModel:
    """Load EnCodec 24 kHz set to 6 kbps, in eval mode, on ``device``.

    ``checkpoint``: a state-dict file in the format of ``encodec_24khz-d7cc33bc.th`` (a plain state
    dict saved with ``torch.save``), loaded with ``weights_only=True`` so a file cannot run code.
    Without it, encodec's own pretrained path is used: torch.hub downloads the file from Meta's
    server into ``<torch hub dir>/checkpoints`` once and reads it from there afterwards, offline too.
    Each call builds a new model; keep it if you need it again.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(
                f"No EnCodec checkpoint at {path}. Pass the path of {C.ENCODEC_CHECKPOINT_NAME} (download it from "
                f"{C.ENCODEC_CHECKPOINT_URL}), or checkpoint=None to use the torch hub cache."
            )
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(
                f"Cannot read the EnCodec checkpoint {path} ({type(exc).__name__}: {exc}). It must be a state dict "
                f"saved with torch.save, like {C.ENCODEC_CHECKPOINT_NAME}; download a fresh copy from "
                f"{C.ENCODEC_CHECKPOINT_URL}."
            ) from exc
        if not isinstance(state, dict):
            raise CheckpointError(
                f"The EnCodec checkpoint {path} holds a {type(state).__name__}, not a state dict. "
                f"Use {C.ENCODEC_CHECKPOINT_NAME} from {C.ENCODEC_CHECKPOINT_URL}."
            )
        model = _build_model()
        result = model.load_state_dict(state, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise CheckpointError(
                f"The EnCodec checkpoint {path} does not fit the 24 kHz model: missing {result.missing_keys[:5]}"
                f"{'...' if len(result.missing_keys) > 5 else ''}, unexpected {result.unexpected_keys[:5]}"
                f"{'...' if len(result.unexpected_keys) > 5 else ''}. Use {C.ENCODEC_CHECKPOINT_NAME} "
                f"({C.ENCODEC_CHECKPOINT_URL})."
            )
        return _finish(model, device, str(path), _sha256(path))

    encodec = import_encodec()
    cached = hub_checkpoint_path()
    try:
        with _quiet_weight_norm():
            model = encodec.EncodecModel.encodec_model_24khz(pretrained=True)
    except Exception as exc:  # URLError, socket timeouts, HTTP errors, hash mismatch of a partial file
        raise CheckpointError(
            f"Could not get the EnCodec checkpoint {C.ENCODEC_CHECKPOINT_NAME} from {C.ENCODEC_CHECKPOINT_URL} "
            f"({type(exc).__name__}: {exc}). Fix: download it on a machine with network access and either put it at "
            f"{cached} (the torch hub checkpoints folder; TORCH_HOME moves it) or pass "
            f"load_codec(checkpoint='path/to/{C.ENCODEC_CHECKPOINT_NAME}')."
        ) from exc
    checksum = _sha256(cached) if cached.is_file() else None
    return _finish(model, device, C.ENCODEC_CHECKPOINT_NAME, checksum)


def random_codec(seed: int = 0) -> EncodecModel:
    """An untrained EnCodec 24 kHz model with random weights and random codebooks, for tests.

    Built without touching the global random state. The codebooks are filled (a fresh model has
    all-zero codebooks awaiting k-means) at about the scale of the untrained encoder's output, so
    encode gives varied codes and decode gives (noise-like) sound.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _build_model()
        with torch.no_grad():
            for layer in model.quantizer.vq.layers:
                book = layer._codebook
                book.embed.copy_(torch.randn_like(book.embed) * 0.03)
                book.embed_avg.copy_(book.embed)
                book.cluster_size.fill_(1.0)
                book.inited.fill_(1.0)
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


def decode_codes(codes: np.ndarray, codec: EncodecModel) -> np.ndarray:
    """(n_codebooks, T) codes -> T*320 float32 samples.

    EnCodec's residual quantizer sums one embedding per codebook, so fewer codebooks is the same
    codec at a lower bandwidth (2 codebooks = 1.5 kbps): that is what makes a coarse preview exact.
    """
    device = _device_of(codec)
    with torch.inference_mode():
        arr = torch.from_numpy(np.ascontiguousarray(codes))[None].to(device).transpose(0, 1)  # (n_q, 1, T)
        out = codec.decoder(codec.quantizer.decode(arr))
        return out.detach().float().cpu().numpy().reshape(-1).astype(np.float32)


def decode(fine: FineCodes, codec: EncodecModel) -> Audio:
    """Fine codes (8, T) -> 24 kHz mono float32 audio of T*320 samples: Suno's ``codec_decode``."""
    expect_artifact(fine, FineCodes, "decode")
    samples = decode_codes(fine.codes, codec)
    prov = Provenance(
        stage="decode",
        model=getattr(codec, "bark_core_source", CODEC_NAME),
        model_checksum=getattr(codec, "bark_core_checksum", None),
        settings={"bandwidth": C.ENCODEC_BANDWIDTH},
        voice=fine.provenance.voice,
        parent=fine.id,
        lineage=fine.lineage_ids(),
    )
    return Audio(provenance=prov, parent=fine, samples=samples.astype(np.float32), sample_rate=C.SAMPLE_RATE)


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


def encode(audio: Audio | np.ndarray, codec: EncodecModel, sample_rate: int | None = None) -> FineCodes:
    """Audio -> EnCodec codes (8, ceil(n/320)) at 6 kbps, e.g. to make a voice from a recording.

    ``audio`` is an :class:`Audio` (its own sample rate is used) or an array with ``sample_rate``
    given: mono (samples,), or (channels, samples) / (samples, channels), mixed down to mono.
    Resampling to 24 kHz is polyphase (``audio_io.resample``, scipy; no torchaudio).
    """
    parent: Audio | None = None
    if isinstance(audio, Audio):
        if sample_rate is not None and int(sample_rate) != audio.sample_rate:
            raise ArtifactError(
                f"sample_rate={sample_rate} contradicts the Audio's own rate {audio.sample_rate}; leave it out."
            )
        parent, samples, sr = audio, audio.samples, audio.sample_rate
    elif isinstance(audio, np.ndarray):
        if sample_rate is None or int(sample_rate) <= 0:
            raise ArtifactError("encode() needs sample_rate=<Hz> with a bare array; an Audio carries its own.")
        samples, sr = _mono_float(audio), int(sample_rate)
    else:
        raise ArtifactError(f"encode() takes an Audio or a numpy array, got {type(audio).__name__}.")
    if samples.shape[0] == 0:
        raise ArtifactError("audio to encode is empty.")
    if sr != C.SAMPLE_RATE:
        samples = resample(samples, sr, C.SAMPLE_RATE).astype(np.float32)
    device = _device_of(codec)
    with torch.inference_mode():
        wav = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)[None, None]
        frames = codec.encode(wav)
        codes = torch.cat([frame[0] for frame in frames], dim=-1)[0]
        codes_np = codes.cpu().numpy().astype(np.int64)
    prov = Provenance(
        stage="encode",
        model=getattr(codec, "bark_core_source", CODEC_NAME),
        model_checksum=getattr(codec, "bark_core_checksum", None),
        settings={"bandwidth": C.ENCODEC_BANDWIDTH, "source_sample_rate": sr},
        parent=parent.id if parent is not None else None,
        lineage=parent.lineage_ids() if parent is not None else (),
    )
    return FineCodes(provenance=prov, parent=parent, codes=codes_np)
