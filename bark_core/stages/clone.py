"""A voice from a recording: EnCodec codes of the user's audio as the coarse and fine prompts.

A stage, not plain data: it runs the codec of a model set, and it binds the rights record that
every later label of this voice must carry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import constants as C
from ..artifacts import SemanticTokens
from ..models import codec
from ..rights import require_rights_for_audio_voice
from ..voices import Voice


def voice_from_audio(models: Any, audio: Any, *, rights: Any, semantic: Any = None, name: str = "reference",
                     sample_rate: int | None = None, max_seconds: float = 10.0, **info: Any) -> Voice:
    """Partial voice cloning: EnCodec codes of a user's recording as coarse/fine prompts.

    Bark has no public audio->semantic model, so the semantic prompt stays empty unless you supply
    one; the voice then steers timbre and recording conditions more than speaking style. A rights
    record (who consented to what, when) is required and travels with the voice into every label.
    """
    record = require_rights_for_audio_voice(rights)
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
