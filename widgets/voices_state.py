"""The session's voices: presets, ``.npz`` files, takes and recordings as voice picker entries.

Apart from the run logic because voices follow rules of their own: a recording needs its rights
record before it becomes a voice, and presets are cached per model set (``Session.models()`` clears
that cache when the model settings change).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from bark_core import BarkError
from bark_core import constants as C

from .settings import StudioError
from .takes import StudioTake


class VoicesMixin:
    """Voices for :class:`~bark_studio.session.Session`. A voice is chosen through ``set(voice=...)``
    like any other setting, so choosing one marks every stage stale the usual way."""

    def voice_choices(self) -> dict[str, list[tuple[str, str]]]:
        """Voice picker groups: language -> [(label, key)]; custom voices come first, then presets."""
        from bark_core import presets_by_language

        groups: dict[str, list[tuple[str, str]]] = {}
        if self.voices:
            groups["Your voices"] = [(_voice_title(k, v), k) for k, v in self.voices.items()]
        for lang, names in presets_by_language().items():
            groups[lang] = [(n, n) for n in names]
        return groups

    def voice(self, key: Any = "__current__") -> Any:
        """The :class:`bark_core.Voice` for a picker key (default: the current one), or None."""
        if key == "__current__":
            key = self._settings["voice"]
        if key is None:
            return None
        if key in self.voices:
            return self.voices[key]
        models = self.models()
        ck = (key, self._models_cfg)
        if ck not in self._voice_cache:
            self._voice_cache[ck] = models.voice(key)
        return self._voice_cache[ck]

    def voice_info(self, key: Any = "__current__") -> dict[str, Any]:
        """Where the voice comes from and its rights record (``bark_core.rights.voice_origin``)."""
        from bark_core import voice_origin

        if key == "__current__":
            key = self._settings["voice"]
        if key is None:
            return {"kind": "none"}
        if key not in self.voices:
            return {"kind": "preset", "preset": key}  # presets are not fetched just to describe them
        voice = self.voices[key]
        info = voice_origin(voice)
        info["seconds"] = round(voice.fine.shape[1] / C.COARSE_RATE_HZ, 2)
        return info

    def _voice_key(self, spec: str) -> str:
        """A voice file named in code becomes a picker entry; an unknown name fails now, with suggestions."""
        from bark_core import load_voice

        voice = load_voice(spec)
        key = f"file:{voice.name}#{voice.id}"
        self.voices[key] = voice
        self.emit("voices", key=key)
        return key

    def _add_voice(self, key: str, voice: Any, select: bool) -> str:
        self.voices[key] = voice
        self.emit("voices", key=key)
        if select:
            self.set(voice=key)
        return key

    def add_voice(self, voice: Any, *, select: bool = True) -> str:
        """A ready :class:`bark_core.Voice` (e.g. from ``load_voice``) as a picker entry; returns its key."""
        from bark_core import Voice

        if not isinstance(voice, Voice):
            raise StudioError(f"add_voice takes a bark_core.Voice, got {type(voice).__name__}.")
        return self._add_voice(f"voice:{voice.name}#{voice.id}", voice, select)

    def add_voice_file(self, source: str | os.PathLike | bytes, *, name: str | None = None,
                       select: bool = True) -> str:
        """A voice from a ``.npz`` path or its bytes (an upload); returns its picker key."""
        from bark_core import load_voice_file

        if isinstance(source, bytes | bytearray | memoryview):
            stem = Path(name or "uploaded.npz").stem
            with tempfile.TemporaryDirectory(prefix="bark-studio-") as tmp:
                path = Path(tmp) / f"{stem}.npz"
                path.write_bytes(bytes(source))
                try:
                    voice = load_voice_file(path, stem)
                except BarkError as exc:  # name the upload, not a temporary file that is gone by now
                    raise type(exc)(_upload_message(str(exc), str(path), name or "the uploaded file")) from None
            voice.source = {**voice.source, "path": f"{stem}.npz"}
        else:
            voice = load_voice_file(source, name)
        return self._add_voice(f"file:{voice.name}#{voice.id}", voice, select)

    def voice_from_take(self, take: StudioTake | int | None = None, *, select: bool = True) -> str:
        """The take (default: the last one with fine codes) as the voice for the next clip."""
        from bark_core import voice_from_artifacts

        if take is None:
            take = next((t for t in reversed(self.takes) if t.fine is not None), None)
            if take is None:
                raise StudioError("No take has fine codes yet: run the fine stage first, then use it as a voice.")
        take = self.take(take)
        if take.fine is None:
            raise StudioError(f"Take {take.number} stops before the fine stage; a voice needs all three stages.")
        voice = voice_from_artifacts(take.semantic, take.coarse, take.fine, name=f"take{take.number}")
        return self._add_voice(f"take:{take.number}#{voice.id}", voice, select)

    def voice_from_audio(self, audio: str | os.PathLike | bytes, *, who: str, right: str, when: Any,
                         evidence: str | None = None, note: str | None = None, name: str | None = None,
                         filename: str | None = None, select: bool = True, semantic: str = "hubert",
                         quantizer: str | None = None, start_s: float | None = None,
                         end_s: float | None = None) -> str:
        """A voice from a recording (``bark_core.voice_from_audio``: all three prompts with ``semantic="hubert"``,
        coarse and fine only with "none"); the rights record (who, right, when) is required and travels with
        the voice into every label. ``audio`` is a file path or the file's bytes. What the recording check
        found is kept in ``voice_warnings``."""
        import warnings

        from bark_core import RecordingWarning, RightsRecord, voice_from_audio

        record = RightsRecord(who=who, right=right, when=when, evidence=evidence, note=note)  # fails first
        opts = dict(rights=record, semantic=semantic, quantizer=quantizer or None, start_s=start_s, end_s=end_s)
        with warnings.catch_warnings(record=True) as caught, tempfile.TemporaryDirectory(prefix="bark-studio-") as tmp:
            warnings.simplefilter("always", RecordingWarning)
            if isinstance(audio, bytes | bytearray | memoryview):
                blob = bytes(audio)
                path = Path(tmp) / (Path(filename or "recording.wav").name or "recording.wav")
                path.write_bytes(blob)
                sha = hashlib.sha256(blob).hexdigest()
            else:
                path = Path(audio)
                filename = filename or path.name
                sha = None
            name = name or Path(filename or "recording").stem
            voice = voice_from_audio(self.models(), path, name=name, **opts)
        self.voice_warnings = [str(w.message) for w in caught if issubclass(w.category, RecordingWarning)]
        # which recording it was, so the rights record can be matched to it later
        voice.source = {**voice.source, "file": filename or "recording", "sha256": sha or voice.source.get("sha256")}
        return self._add_voice(f"audio:{name}#{voice.id}", voice, select)


def _upload_message(message: str, temp_path: str, name: str) -> str:
    """An upload's error as the user knows the file; numpy's advice to load it unsafely is never passed on."""
    message = message.replace(temp_path, name)
    sentences = [s for s in message.split(". ") if "allow_pickle" not in s and "unsafely" not in s]
    return ". ".join(sentences).rstrip(".") + ". Upload a voice .npz saved by Bark or bark_core."


def _voice_title(key: str, voice: Any) -> str:
    kind = key.split(":", 1)[0]
    what = {"file": "file", "take": "from take", "audio": "from recording"}.get(kind, kind)
    return f"{voice.name} ({what})"
