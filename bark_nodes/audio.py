"""Between bark_core's ``Audio`` artifact and ComfyUI's AUDIO dict.

ComfyUI's AUDIO is ``{"waveform": float32 tensor [B, C, T] in -1..1, "sample_rate": int}``. We add
a few extra keys, all prefixed ``bark_``, so later Bark nodes (inspect, label, quality, review, save)
still see where the waveform came from; core nodes ignore extra keys:

- ``bark_artifact``: the ``Audio`` artifact the waveform came from (its provenance and, in memory,
  its parent chain). A node that changes the waveform makes a new dict, and the artifact is checked
  against the samples before it is trusted.
- ``bark_meta``: what the label should record (text, models, voice, seed) when the artifact alone
  does not say it, e.g. the take seed of Bark Generate or the full text of Long-form.
- ``bark_label``: the settings Bark Label marked the audio with (key, strength, include_text), so
  the saver labels the file with the same key instead of adding a second mark.
- ``bark_quality``: the QualityReport of Bark Quality Check, for the review record and the label.

Every entry names the artifact id it belongs to and applies to that artifact and the artifacts
derived from it (its provenance lineage), never to unrelated audio. Dicts are never modified in
place: ComfyUI hands one node's output to several nodes and keeps it in its cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from bark_core import ArtifactError, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens, Take, limits

ARTIFACT_KEY = "bark_artifact"
META_KEY = "bark_meta"
LABEL_KEY = "bark_label"
QUALITY_KEY = "bark_quality"
CARRIED_KEYS = (META_KEY, LABEL_KEY, QUALITY_KEY)


def to_comfy(audio: Audio, meta: dict[str, Any] | None = None, source: Any = None) -> dict[str, Any]:
    """Mono artifact -> AUDIO dict with batch 1 and one channel.

    ``meta``: label fields for this take (``bark_meta``). ``source``: an AUDIO dict this one derives
    from; its ``bark_`` entries are carried over (they apply through the lineage).
    """
    wave = torch.from_numpy(np.ascontiguousarray(audio.samples, dtype=np.float32)).reshape(1, 1, -1)
    out: dict[str, Any] = {"waveform": wave, "sample_rate": int(audio.sample_rate), ARTIFACT_KEY: audio}
    if isinstance(source, dict):
        out.update({k: source[k] for k in CARRIED_KEYS if k in source})
    if meta:
        out[META_KEY] = {"artifact_id": audio.id, "meta": dict(meta)}
    return out


def check_comfy(value: Any) -> tuple[torch.Tensor, int]:
    """The waveform as [B, C, T] float and its rate, or a clear error for anything else on the link."""
    if not isinstance(value, dict) or "waveform" not in value or "sample_rate" not in value:
        raise ArtifactError(f"Expected ComfyUI AUDIO ({{'waveform', 'sample_rate'}}), got {type(value).__name__}.")
    wave = value["waveform"]
    try:
        if not isinstance(wave, torch.Tensor):
            wave = torch.as_tensor(np.asarray(wave, dtype=np.float32))
        if wave.is_complex() or wave.dtype == torch.bool:
            raise TypeError(f"dtype {wave.dtype}")
        rate = value["sample_rate"]
        if isinstance(rate, bool) or float(rate) != int(rate):
            raise ValueError(f"sample_rate {rate!r:.40}")
        rate = int(rate)
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:
        raise ArtifactError(f"This AUDIO is not audio: waveform must be real numbers and sample_rate a whole "
                            f"number of Hz ({exc}).") from None
    if wave.ndim == 1:
        wave = wave[None, None]
    elif wave.ndim == 2:
        wave = wave[None]
    if wave.ndim != 3:
        raise ArtifactError(f"AUDIO waveform must be [batch, channels, samples], got shape {tuple(wave.shape)}.")
    if not limits.MIN_SAMPLE_RATE <= rate <= limits.MAX_SAMPLE_RATE:
        raise ArtifactError(f"AUDIO sample_rate is {rate} Hz; audio rates are {limits.MIN_SAMPLE_RATE} to "
                            f"{limits.MAX_SAMPLE_RATE} Hz.")
    return wave.float(), rate


def batch_size(value: Any) -> int:
    return int(check_comfy(value)[0].shape[0])


def from_comfy(value: Any, index: int = 0) -> Audio:
    """AUDIO dict -> mono ``Audio`` artifact (channels averaged), keeping our provenance when it still fits."""
    wave, rate = check_comfy(value)
    if not 0 <= index < wave.shape[0]:
        raise ArtifactError(f"AUDIO batch has {wave.shape[0]} item(s); index {index} does not exist.")
    if wave.shape[-1] == 0:
        raise ArtifactError("The AUDIO on this link is empty (0 samples).")
    mono = wave[index].mean(dim=0).cpu().numpy().astype(np.float32)
    art = value.get(ARTIFACT_KEY) if isinstance(value, dict) else None
    if (isinstance(art, Audio) and art.sample_rate == rate and art.n_samples == mono.shape[0]
            and np.array_equal(art.samples, mono)):
        return art
    return Audio(samples=mono, sample_rate=rate,
                 provenance=Provenance(stage="external", settings={"channels": int(wave.shape[1])},
                                       extra={"source": "ComfyUI AUDIO"}))


def one_clip(value: Any, node: str) -> Audio:
    """The single clip of an AUDIO, or a clear error for a batch (these nodes judge one take at a time)."""
    n = batch_size(value)
    if n != 1:
        raise ArtifactError(f"{node} works on one clip at a time, but this AUDIO holds a batch of {n}. "
                            "Split the batch first, or use one clip per node.")
    return from_comfy(value)


def audio_stats(value: Any) -> tuple[float, int, int, int]:
    """(seconds, samples, sample rate, channels) of an AUDIO dict."""
    wave, rate = check_comfy(value)
    if rate <= 0:
        raise ArtifactError(f"AUDIO sample_rate must be positive, got {rate}.")
    n = int(wave.shape[-1])
    return n / rate, n, rate, int(wave.shape[1])


# ---- what rides along with the waveform -----------------------------------------------------------

def _applies(entry: Any, art: Audio) -> bool:
    """An entry recorded for artifact X applies to X and to audio derived from X."""
    return isinstance(entry, dict) and entry.get("artifact_id") in (art.id, *art.provenance.lineage)


def entry_for(value: Any, key: str, art: Audio) -> dict[str, Any] | None:
    entry = value.get(key) if isinstance(value, dict) else None
    return entry if _applies(entry, art) else None


def take_of(art: Audio) -> Take | None:
    """The Take a decoded clip came from, when its fine/coarse/semantic parents are still in memory."""
    node: Any = art
    while isinstance(node, Audio):  # labelled or exported audio: walk up to the decoded clip
        if isinstance(node.parent, FineCodes):
            fine = node.parent
            coarse = fine.parent
            semantic = getattr(coarse, "parent", None)
            if isinstance(coarse, CoarseCodes) and isinstance(semantic, SemanticTokens):
                return Take(semantic=semantic, coarse=coarse, fine=fine, audio=node)
            return None
        node = node.parent
    return None


def label_meta(value: Any, art: Audio) -> dict[str, Any]:
    """Label fields (text, model, voice, seed) for a clip: recorded by the node that made it, else
    read off its stage chain (Take.label_meta), else nothing (foreign audio: the label says only
    what the artifact's provenance says)."""
    entry = entry_for(value, META_KEY, art)
    if entry is not None:
        return dict(entry["meta"])
    take = take_of(art)
    return take.label_meta() if take is not None else {}


def quality_for(value: Any, art: Audio) -> Any:
    """The QualityReport checked on this clip (or the clip it was derived from), if any."""
    entry = entry_for(value, QUALITY_KEY, art)
    return None if entry is None else entry.get("report")


def with_entry(value: dict[str, Any], entry: str, art: Audio, /, **data: Any) -> dict[str, Any]:
    """A new AUDIO dict with one ``bark_`` entry set (the input dict is left as it was)."""
    return {**value, entry: {"artifact_id": art.id, **data}}
