"""A voice from a recording: EnCodec codes of the user's audio as the coarse and fine prompts.

A stage, not plain data: it runs the codec of a model set, and it binds the rights record that
every later label of this voice must carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constants as C
from .. import limits
from ..artifacts import Audio, SemanticTokens
from ..edit import slice_artifact
from ..errors import ArtifactError
from ..models import codec
from ..rights import require_rights_for_audio_voice
from ..voices import Voice


def _last_seconds(audio: Any, seconds: float, sample_rate: int | None) -> Any:
    """The end of a recording: only that much is encoded, however long the recording is."""
    if isinstance(audio, Audio):
        n = int(seconds * audio.sample_rate)
        return audio if audio.n_samples <= n else slice_artifact(audio, audio.duration_s - n / audio.sample_rate)
    if isinstance(audio, np.ndarray) and sample_rate:
        n = int(seconds * limits.sample_rate(sample_rate, error=ArtifactError))
        if audio.ndim == 2 and audio.shape[0] > audio.shape[1]:  # (samples, channels)
            return audio[-n:]
        return audio[..., -n:]
    return audio


def voice_from_audio(models: Any, audio: Any, *, rights: Any, semantic: Any = None, name: str = "reference",
                     sample_rate: int | None = None, max_seconds: float = 10.0, **info: Any) -> Voice:
    """Partial voice cloning: EnCodec codes of a user's recording as coarse/fine prompts.

    Bark has no public audio->semantic model, so the semantic prompt stays empty unless you supply
    one; the voice then steers timbre and recording conditions more than speaking style. A rights
    record (who consented to what, when) is required and travels with the voice into every label.
    """
    record = require_rights_for_audio_voice(rights)
    max_seconds = limits.number("max_seconds", max_seconds, lo=0.1, hi=limits.MAX_STAGE_S - 1.0,
                                hint="It is how much of the recording's end becomes the voice (default 10 s).")
    audio = _last_seconds(audio, max_seconds + 1.0, sample_rate)  # a second more: EnCodec's context at the cut
    with models.use("codec") as codec_model:
        fine = codec.encode(audio, codec_model, sample_rate=sample_rate)
    n = min(fine.n_frames, int(max_seconds * C.COARSE_RATE_HZ))
    codes = fine.codes[:, -n:]
    sem = np.zeros(0, dtype=np.int64)
    if semantic is not None:
        sem = semantic.tokens if isinstance(semantic, SemanticTokens) else np.asarray(semantic)
    # ``info``: what the caller knows of the recording (file name, its sha256), kept with the rights
    source: dict[str, Any] = {**info, "kind": "audio", "rights": record.to_dict(),
                              "encoded_from": fine.provenance.parent, "seconds": round(n / C.COARSE_RATE_HZ, 3)}
    source["semantic_supplied"] = bool(sem.size)
    return Voice(semantic=sem, coarse=codes[:2], fine=codes, name=name, source=source)
