"""A whole scene from a script: every line through the retake loop, one timeline, a labelled track, an SRT of
what was placed and a report that says, line by line, how many tries it took and why.

    from bark_core.script import read_script, render_script
    prod = render_script(models, read_script("scene.txt"), seed=7)
    prod.save("out/")        # scene.wav (labelled), scene.srt, report.json, report.txt, lines/*.wav
    print(prod.table())
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import constants as C
from ..artifacts import Audio, Provenance
from ..errors import OutputPathError
from ..fileio import atomic_write
from ..label import export_audio
from ..quality import check
from ..sampling import make_generator
from ..stages import BarkModels
from ..voices import Voice
from .parse import Script
from .retake import LineResult, Scorer, render_line, wrap_take
from .scoring import LineScorer, RetakePolicy, SpeakerMemory
from .subtitles import compose_srt
from .timeline import Placement, place, placed_cues
from .voicemap import VoiceMap

# progress(line_index, n_lines, attempt, max_tries, stage, done, total); line_index is 1-based
ScriptProgress = Callable[[int, int, int, int, str, int, int], None]


@dataclass
class Production:
    """A rendered scene: per-line results, the placed track, the SRT of what was placed, and the settings."""

    script: Script
    voices: VoiceMap
    seed: int
    policy: RetakePolicy
    engines: dict[str, Any]
    results: dict[int, LineResult] = field(default_factory=dict)  # by line number
    placements: list[Placement] = field(default_factory=list)
    audio: Audio | None = None
    srt: str = ""
    untrained: bool = False

    # ------------------------------------------------------------------------------------------ report
    def rows(self) -> list[dict[str, Any]]:
        """One row per spoken line: line, speaker, tries, WER, similarity, duration, verdict, placed times."""
        where = {p.number: p for p in self.placements}
        rows = []
        for number, r in sorted(self.results.items()):
            s = r.best.scores
            p = where.get(number)
            rows.append({"line": number, "lineno": r.line.lineno, "speaker": r.line.speaker, "text": r.line.text,
                         "tries": len(r.candidates), "seeds": r.seeds, "wer": s.wer, "similarity": s.similarity,
                         "duration_s": round(p.end_s - p.start_s, 3) if p else s.duration_s,
                         "verdict": r.verdict + (f" ({', '.join(p.flags)})" if p and p.flags else ""),
                         "passed": r.passed and not (p and any(f.startswith("overflow") for f in p.flags)),
                         "start_s": p.start_s if p else None, "end_s": p.end_s if p else None,
                         "take_id": r.take.id if r.take is not None else None})
        return rows

    def report(self) -> dict[str, Any]:
        rows = self.rows()
        return {"schema": "bark_core.script/1", "source": self.script.source, "kind": self.script.kind,
                "seed": self.seed, "engines": self.engines, "policy": self.policy.to_dict(),
                "voices": self.voices.to_dict(), "untrained_models": self.untrained,
                "duration_s": round(self.audio.duration_s, 3) if self.audio else None,
                "lines_passed": sum(r["passed"] for r in rows), "lines": rows,
                "placements": [p.to_dict() for p in self.placements],
                "candidates": {str(n): [c.scores.to_dict() for c in r.candidates] for n, r in self.results.items()}}

    def qc_summary(self) -> dict[str, Any]:
        """What the scene's label records: the track's quality summary plus every line's retake outcome."""
        out = check(self.audio).summary() if self.audio is not None else {}
        out["retakes"] = [{k: row[k] for k in ("line", "speaker", "tries", "wer", "similarity", "passed")}
                          for row in self.rows()]
        out["asr"], out["speaker_model"] = self.engines.get("asr"), self.engines.get("speaker")
        return out

    def table(self) -> str:
        """The summary table the CLI prints at the end."""
        head = f"{'line':>4}  {'speaker':<12} {'tries':>5} {'WER':>5} {'sim':>5} {'dur s':>6}  verdict"
        out = [head, "-" * len(head)]
        for r in self.rows():
            wer = "  n/a" if r["wer"] is None else f"{r['wer']:5.2f}"
            sim = "  n/a" if r["similarity"] is None else f"{r['similarity']:5.2f}"
            out.append(f"{r['line']:>4}  {str(r['speaker'])[:12]:<12} {r['tries']:>5} {wer} {sim} "
                       f"{r['duration_s']:>6.2f}  {r['verdict']}")
        rows = self.rows()
        out.append(f"{sum(r['passed'] for r in rows)}/{len(rows)} lines passed; scene "
                   f"{self.audio.duration_s if self.audio else 0:.2f} s; ASR {self.engines.get('asr')}; speaker "
                   f"model {self.engines.get('speaker')}; seed {self.seed}")
        note = self.engines.get("speaker_note") or ""
        if "fallback" in note:
            out.append(f"note: speaker model: {note}")
        if self.engines.get("asr") == "none":
            out.append("note: no recogniser (pip install pocketsphinx, or cache a Whisper model): WER was not checked.")
        if self.untrained:
            out.append("note: tiny UNTRAINED models - the audio is noise, so every check is expected to fail.")
        return "\n".join(out)

    # ------------------------------------------------------------------------------------------ assembly
    def assemble(self) -> Audio:
        """(Re)build the track and the SRT from the chosen takes."""
        takes = {n: r.take.samples for n, r in self.results.items() if r.take is not None}
        rate = next((r.take.sample_rate for r in self.results.values() if r.take is not None), C.SAMPLE_RATE)
        samples, self.placements = place(self.script.lines, takes, rate, timed=self.script.timed)
        chosen = [self.results[p.number].take for p in self.placements]
        extra: dict[str, Any] = {"untrained": self.untrained}
        voices = self.voices.to_dict()
        origins = [t.provenance.extra.get("voice_origin") for t in chosen if t is not None]
        origin = next((o for o in origins if isinstance(o, dict) and o.get("kind") == "audio"), None)
        if origin is not None:
            extra["voice_origin"] = origin  # a cloned voice's rights record must reach the scene's label
        prov = Provenance(stage="script", model=chosen[0].provenance.model if chosen else None,
                          settings={"source": self.script.source, "kind": self.script.kind,
                                    "placements": [p.to_dict() for p in self.placements]},
                          seed=self.seed, voice=", ".join(f"{k}={v['voice']}" for k, v in voices.items()),
                          parent=chosen[0].id if chosen else None, lineage=tuple(t.id for t in chosen), extra=extra)
        self.audio = Audio(samples=samples, sample_rate=rate, provenance=prov, parent=chosen[0] if chosen else None)
        self.srt = compose_srt(placed_cues(self.placements))
        return self.audio

    def label_meta(self) -> dict[str, Any]:
        text = "\n".join(f"{ln.speaker}: {ln.text}" for ln in self.script.spoken)
        return {"text": text, "model": self.audio.provenance.model if self.audio else None,
                "voice": self.audio.provenance.voice if self.audio else None, "seed": self.seed,
                "script": {"source": os.path.basename(self.script.source), "lines": len(self.results),
                           "kind": self.script.kind}}

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False, line_files: bool = True,
             srt: bool = True) -> dict[str, Path]:
        """Write the labelled scene (scene.wav), report.json/.txt, scene.srt (``srt``) and each chosen line."""
        if self.audio is None:
            self.assemble()
        out = Path(folder)
        scene = out / "scene.wav"
        if scene.exists() and not overwrite:
            raise OutputPathError(f"{scene} already exists; pass overwrite=True (--overwrite) or pick another folder.")
        paths: dict[str, Path] = {}
        paths["audio"] = export_audio(self.audio, scene, overwrite=True, quality=self.qc_summary(),
                                      **self.label_meta())
        files = [("scene.srt", self.srt)] if srt else []
        for name, blob in (*files, ("report.json", json.dumps(self.report(), indent=2,
                                                                                ensure_ascii=False)),
                           ("report.txt", self.table() + "\n")):
            with atomic_write(out / name) as fh:
                fh.write(blob.encode("utf-8"))
            paths[name] = out / name
        if line_files:
            for n, r in sorted(self.results.items()):
                speaker = "".join(ch if ch.isalnum() else "_" for ch in str(r.line.speaker))[:24]
                s = r.best.scores
                qc = {"passed": r.passed, "tries": len(r.candidates), "wer": s.wer, "similarity": s.similarity,
                      "candidates": [c.scores.to_dict() for c in r.candidates]}
                paths[f"line{n}"] = export_audio(r.take, out / "lines" / f"{n:03d}_{speaker}.wav", overwrite=True,
                                                 quality=qc, text=r.line.text, seed=r.best.seed)
        return paths


def render_script(models: BarkModels, script: Script, voices: VoiceMap | dict[str, Any] | None = None, *,
                  seed: int | None = None, policy: RetakePolicy | None = None, scorer: Scorer | None = None,
                  progress: ScriptProgress | None = None, **generate_kwargs: Any) -> Production:
    """Render every line of ``script`` through the retake loop and lay them on one timeline.

    ``voices`` (a :class:`VoiceMap`, a dict, or None) overrides the script header's ``[voices]``; ``seed``
    defaults to the header's ``seed``, else a random one (recorded). ``generate_kwargs`` go to every
    :func:`~bark_core.stages.generate` call (temperatures, ``max_gen_duration_s`` ...).
    """
    header_map = VoiceMap.from_mapping(script.header.get("voices"), source=script.source,
                                       base=Path(script.folder) if script.folder is not None else None)
    vmap = header_map.merged(voices if isinstance(voices, VoiceMap) or voices is None
                             else VoiceMap.from_mapping(voices))
    vmap.check(script)
    if seed is None:
        seed = script.header.get("seed")
    if seed is None:
        _, seed = make_generator(None, "cpu")
    policy = policy or RetakePolicy()
    scorer = scorer or LineScorer(policy)
    engines = scorer.describe() if hasattr(scorer, "describe") else {"asr": "custom", "speaker": "custom"}
    prod = Production(script=script, voices=vmap, seed=int(seed), policy=policy, engines=engines,
                      untrained=bool(getattr(models, "untrained", False)))
    state = _SpeakerState(models, vmap, scorer)
    spoken = script.spoken
    for idx, line in enumerate(spoken, start=1):
        cb = None
        if progress is not None:
            def cb(attempt: int, tries: int, stage: str, done: int, total: int, _i: int = idx) -> None:
                progress(_i, len(spoken), attempt, tries, stage, done, total)
        voice, memory = state.for_line(line.speaker)
        result = render_line(models, line, voice, seed=prod.seed, policy=policy, scorer=scorer, memory=memory,
                             progress=cb, **generate_kwargs)
        state.accept(line.speaker, result)
        prod.results[line.number] = result
    prod.assemble()
    prod.generate_kwargs = generate_kwargs  # type: ignore[attr-defined]
    prod._state = state  # type: ignore[attr-defined]
    return prod


def retake_line(models: BarkModels, prod: Production, number: int, *, tries: int | None = None,
                **generate_kwargs: Any) -> LineResult:
    """Make new candidates for one line (continuing its seed sequence), keep the best of old and new, re-assemble."""
    if number not in prod.results:
        raise KeyError(f"line {number} is not a spoken line of this script (lines: {sorted(prod.results)}).")
    old = prod.results[number]
    state: _SpeakerState = getattr(prod, "_state", None) or _SpeakerState(models, prod.voices,
                                                                          LineScorer(prod.policy))
    policy = RetakePolicy(**{**prod.policy.to_dict(), "max_tries": tries or prod.policy.max_tries})
    voice, memory = state.for_line(old.line.speaker)
    kwargs = {**getattr(prod, "generate_kwargs", {}), **generate_kwargs}
    new = render_line(models, old.line, voice, seed=prod.seed, policy=policy, scorer=state.scorer, memory=memory,
                      start_attempt=len(old.candidates), **kwargs)
    # the user asked for another take of this line: choose among the new candidates; the old ones stay on record
    merged = LineResult(line=old.line, candidates=old.candidates + new.candidates,
                        chosen=len(old.candidates) + new.chosen)
    merged.take = wrap_take(merged, policy)
    prod.results[number] = merged
    prod.assemble()
    return merged


class _SpeakerState:
    """Per speaker: the voice (resolved once), its reference embedding, and the accepted lines' embeddings."""

    def __init__(self, models: BarkModels, vmap: VoiceMap, scorer: Any):
        self.models, self.vmap, self.scorer = models, vmap, scorer
        self.voices: dict[str, Voice | None] = {}
        self.memory: dict[str, SpeakerMemory] = {}

    def for_line(self, speaker: str | None) -> tuple[Voice | None, SpeakerMemory]:
        key = str(speaker)
        if key not in self.voices:
            voice = self.vmap.resolve(self.models, key)
            self.voices[key] = voice
            self.memory[key] = SpeakerMemory(reference=self._reference(voice))
        return self.voices[key], self.memory[key]

    def _reference(self, voice: Voice | None) -> Any:
        embed = getattr(self.scorer, "embed", None)
        if voice is None or embed is None or getattr(self.scorer, "speaker_engine", "off") == "off":
            return None
        from ..artifacts import FineCodes
        from ..stages import decode

        fine = FineCodes(codes=voice.fine, provenance=Provenance(stage="voice", voice=voice.label))
        return embed(decode(self.models, fine))  # the voice prompt itself, heard through the codec

    def accept(self, speaker: str | None, result: LineResult) -> None:
        key = str(speaker)
        embed = getattr(self.scorer, "embed", None)
        if embed is not None and result.take is not None and getattr(self.scorer, "speaker_engine", "off") != "off":
            emb = embed(result.take)
            if emb is not None:
                self.memory[key].accepted.append(emb)
        if self.voices.get(key) is None and self.vmap.entry(key) is not None and self.vmap.entry(key).spec is None:
            self.voices[key] = result.voice(name=key)  # a random speaker stays the same person from now on
