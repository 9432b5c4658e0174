"""A Bark voice from a recording, all three prompts, with the speaker's consent on record.

The order of work is the order of what can go wrong: the rights record first (nothing is read
without it), then the recording within its limits, the prompt's choice and its checks, and only then
the models (HuBERT + quantizer for the semantic prompt, EnCodec for the coarse and fine prompts).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .. import constants as C
from ..artifacts import Audio
from ..rights import RightsRecord, require_rights_for_audio_voice
from ..stages.clone import prompts_from_audio
from ..voices import Voice
from .prompt import DEFAULT_PROMPT_S, check_prompt, select_prompt
from .recording import MAX_RECORDING_S, load_recording


def voice_from_audio(models: Any, audio: Audio | np.ndarray | str | os.PathLike, *,
                     rights: RightsRecord | dict[str, Any] | None, semantic: Any = "hubert",
                     quantizer: str | os.PathLike | None = None, hubert: str | os.PathLike | None = None,
                     start_s: float | None = None, end_s: float | None = None,
                     max_seconds: float = DEFAULT_PROMPT_S, trim: bool = True, name: str = "reference",
                     sample_rate: int | None = None, max_recording_s: float = MAX_RECORDING_S,
                     **info: Any) -> Voice:
    """A voice (semantic, coarse and fine prompts) from a recording of one speaker.

    ``rights``: required: who consented to what, when (a :class:`~bark_core.rights.RightsRecord` or its
    dict). It travels with the voice into its ``.npz``, every take and every label.
    ``audio``: an Audio, an array (with ``sample_rate``) or an audio file (only ``start_s..end_s`` is read).
    ``semantic``: "hubert" (HuBERT base + quantizer: the full clone), "none" (a partial voice: no semantic
    prompt) or semantic tokens of the same recording. ``quantizer``: an official file name, a local
    ``.pth`` or ``owner/repo/file.pth`` (default ``quantifier_hubert_base_ls960_14.pth``, English-trained);
    ``hubert``: a hub repo or folder (default ``facebook/hubert-base-ls960``); see ``models.semantic_encoder``.
    The prompt is at most ``max_seconds`` of whole phrases with the silence trimmed (``trim=False``: the
    last ``max_seconds`` as given). Problems a listener would hear come as :class:`RecordingWarning`.
    ``info``: what else the caller knows of the recording, kept in the voice's source.
    """
    record = require_rights_for_audio_voice(rights)
    rec = load_recording(audio, sample_rate=sample_rate, start_s=start_s, end_s=end_s, max_s=max_recording_s)
    selection = select_prompt(rec.samples, rec.sample_rate, max_s=max_seconds, trim=trim)
    lo, hi = round(selection.start_s * rec.sample_rate), round(selection.end_s * rec.sample_rate)
    segment = rec.samples[lo:hi]
    flags = check_prompt(segment, rec.sample_rate, selection, label=rec.file or name)
    prompts = prompts_from_audio(models, segment, sample_rate=rec.sample_rate, semantic=semantic,
                                 quantizer=quantizer, hubert=hubert)
    codes = prompts.codes
    source: dict[str, Any] = {
        **info, "kind": "audio", "rights": record.to_dict(),
        "range_s": [round(rec.offset_s + selection.start_s, 3), round(rec.offset_s + selection.end_s, 3)],
        "seconds": round(codes.shape[1] / C.COARSE_RATE_HZ, 3), "selection": selection.to_dict(),
        "semantic": prompts.semantic_info, "recording_check": sorted({f.code for f in flags}),
        "encoded_from": prompts.encoded_from,
    }
    if rec.file is not None:
        source.setdefault("file", rec.file)
        source.setdefault("sha256", rec.sha256)
    if rec.duration_s is not None:
        source.setdefault("duration_s", round(rec.duration_s, 3))
    if rec.parent is not None:
        source.setdefault("audio_id", rec.parent.id)
    return Voice(semantic=prompts.semantic, coarse=codes[:2], fine=codes, name=name, source=source)
