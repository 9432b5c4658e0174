"""The studio's engine: settings, stage results, staleness, runs, takes, voices, review and saving.

Nothing here imports ipywidgets, so the same session drives the notebook widget, a plain script and
the tests. All generation, rendering, quality, review, rights and export logic is ``bark_core``'s;
this module only decides *which* core call to make next and remembers what came back:

* every setting belongs to one stage; a stage's result is *fresh* while the settings of that stage
  and of every stage upstream are those it was made with (and its input is the upstream result now
  held), *stale* otherwise;
* running a stage first brings every missing or stale upstream stage up to date (through the
  models' :class:`~bark_core.cache.StageCache`, so unchanged stages come back as cache hits);
* cancellation rides on the core's ``progress(done, total)`` callback: it raises
  :class:`RunCancelled`, which unwinds the stage without touching the results already held.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bark_core import BarkError, BarkModels
from bark_core import constants as C

log = logging.getLogger("bark_studio")

STAGES: tuple[str, ...] = ("semantic", "coarse", "fine", "decode", "label")
TITLES: dict[str, str] = {"semantic": "Semantic", "coarse": "Coarse", "fine": "Fine", "decode": "Decode",
                          "label": "Label"}
# which weights a stage needs, to announce loads and downloads before they happen
MODEL_OF: dict[str, str | None] = {"semantic": "text", "coarse": "coarse", "fine": "fine", "decode": "codec",
                                   "label": None}
MODEL_KEYS: tuple[str, ...] = ("models", "size", "device", "dtype", "offload")
STAGE_KEYS: dict[str, tuple[str, ...]] = {
    "semantic": ("text", "voice", "semantic_temp", "semantic_top_k", "semantic_top_p", "min_eos_p",
                 "max_gen_duration_s", "allow_early_stop", "semantic_seed"),
    "coarse": ("coarse_temp", "coarse_top_k", "coarse_top_p", "max_coarse_history", "sliding_window_len",
               "coarse_seed"),
    "fine": ("fine_temp", "fine_seed"),
    "decode": (),
    "label": ("include_text",),
}
# settings that change what is shown, not what a stage makes: they never mark anything stale
EXTRA_KEYS: tuple[str, ...] = ("preview",)
SEEDED: tuple[str, ...] = ("semantic", "coarse", "fine")
MAX_SEED = 2**63 - 1

DEFAULTS: dict[str, Any] = {
    "models": "suno", "size": "large", "device": "auto", "dtype": "auto", "offload": False,
    "text": "Hello there! [laughs] This is Bark, stage by stage.", "voice": None,
    "semantic_temp": C.DEFAULT_SEMANTIC_TEMP, "semantic_top_k": None, "semantic_top_p": None,
    "min_eos_p": C.DEFAULT_MIN_EOS_P, "max_gen_duration_s": None, "allow_early_stop": True, "semantic_seed": 0,
    "coarse_temp": C.DEFAULT_COARSE_TEMP, "coarse_top_k": None, "coarse_top_p": None,
    "max_coarse_history": C.MAX_COARSE_HISTORY, "sliding_window_len": C.SLIDING_WINDOW_LEN, "coarse_seed": 0,
    "fine_temp": C.DEFAULT_FINE_TEMP, "fine_seed": 0,
    "include_text": False, "preview": True,
}


class StudioError(BarkError, ValueError):
    """A studio request cannot be carried out as asked (unknown setting, nothing to save, busy, ...)."""


class RunCancelled(BarkError):
    """The user pressed Cancel; raised from the core's progress callback to stop the stage at once."""


def stage_seeds(seed: int) -> dict[str, int]:
    """The per-stage seeds ``bark_core.generate(seed=...)`` derives, so a studio take can be redone there."""
    from bark_core.sampling import derive_seed

    return {f"{s}_seed": derive_seed(int(seed), s) for s in SEEDED}


def random_seed() -> int:
    """A fresh seed for the dice buttons; kept below 2**31 so it is short to read and to type."""
    return secrets.randbelow(2**31)


def error_message(exc: BaseException) -> str:
    """What a person should read: the core's message for its own errors, one line for anything else."""
    if isinstance(exc, BarkError | ValueError):
        return str(exc) or type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"Unexpected {type(exc).__name__}: {text[0] if text else 'no message'} (details in the log)."


# --------------------------------------------------------------------------------------------------
# Results and takes
# --------------------------------------------------------------------------------------------------


@dataclass
class StageResult:
    """One stage's output as the studio received it.

    ``cache_hit`` is copied at the moment the core returned the artifact: the in-memory cache hands
    the same object out again later and flips its flag, so the artifact's own flag can change after
    the fact. ``signature`` and ``input_id`` decide later whether the result is still fresh.
    """

    stage: str
    artifact: Any
    cache_hit: bool
    seconds: float
    signature: str
    input_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    quality: Any = None  # QualityReport, for decode results
    preview: Any = None  # Audio from decode_preview, for coarse results
    images: dict[str, bytes] = field(default_factory=dict, repr=False)  # PNG cache for panels and compare

    def summary(self) -> str:
        """One line for the stage panel: sizes, duration, seed, cache hit or compute time."""
        art = self.artifact
        prov = art.provenance
        if self.stage == "semantic":
            size = f"{art.n_frames} tokens @ {C.SEMANTIC_RATE_HZ:g} Hz"
        elif self.stage in ("coarse", "fine"):
            size = f"{art.codes.shape[0]} codebooks × {art.n_frames} frames @ {C.COARSE_RATE_HZ} Hz"
        else:
            size = f"{art.n_samples} samples @ {art.sample_rate} Hz"
        parts = [size, f"{art.duration_s:.2f} s"]
        if prov.seed is not None and self.stage in SEEDED:
            parts.append(f"seed {prov.seed}")
        parts.append("from cache" if self.cache_hit else f"computed in {self.seconds:.2f} s")
        if self.stage == "label":
            settings = prov.settings
            parts.append("watermark added" if settings.get("watermark_added") else "watermark already present")
        if (prov.extra or {}).get("untrained"):
            parts.append("UNTRAINED weights")
        return " · ".join(parts)


@dataclass
class StudioTake:
    """One take in the history: the stage results it holds, and the settings that made them."""

    number: int
    settings: dict[str, Any]
    results: dict[str, StageResult]
    voice: Any = None
    created: str = field(default_factory=lambda: _dt.datetime.now().strftime("%H:%M:%S"))

    def _art(self, stage: str) -> Any:
        res = self.results.get(stage)
        return None if res is None else res.artifact

    @property
    def semantic(self) -> Any:
        return self._art("semantic")

    @property
    def coarse(self) -> Any:
        return self._art("coarse")

    @property
    def fine(self) -> Any:
        return self._art("fine")

    @property
    def audio(self) -> Any:
        """The decoded audio (what is checked and reviewed); ``labelled`` is the watermarked copy."""
        return self._art("decode")

    @property
    def labelled(self) -> Any:
        return self._art("label")

    @property
    def preview(self) -> Any:
        res = self.results.get("coarse")
        return None if res is None else res.preview

    @property
    def quality(self) -> Any:
        res = self.results.get("decode")
        return None if res is None else res.quality

    @property
    def stages(self) -> list[str]:
        return [s for s in STAGES if s in self.results]

    @property
    def complete(self) -> bool:
        """Whether the take reached audio (it can then be heard, checked, reviewed and exported)."""
        return "decode" in self.results

    def as_take(self) -> Any:
        """The core's :class:`bark_core.Take` (needs every stage through decode)."""
        from bark_core import Take

        missing = [s for s in ("semantic", "coarse", "fine", "decode") if s not in self.results]
        if missing:
            raise StudioError(f"Take {self.number} has no {', '.join(missing)} result yet; run it through decode.")
        return Take(semantic=self.semantic, coarse=self.coarse, fine=self.fine, audio=self.audio)

    def relevant_settings(self) -> dict[str, Any]:
        """The settings of the stages this take has (others did not shape it)."""
        keys = [k for s in self.stages for k in STAGE_KEYS[s]]
        return {k: self.settings.get(k) for k in (*MODEL_KEYS, *keys)}

    def title(self) -> str:
        """A short line for pickers: number, last stage, duration, temperatures."""
        last = self.stages[-1] if self.stages else "nothing"
        art = self.results[last].artifact if self.stages else None
        dur = f"{art.duration_s:.1f} s" if art is not None else ""
        temps = "/".join(_fmt(self.settings.get(k)) for k in ("semantic_temp", "coarse_temp", "fine_temp"))
        return f"#{self.number} · {self.created} · up to {last} · {dur} · temps {temps}"


def _fmt(value: Any) -> str:
    if value is None:
        return "argmax"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --------------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------------

Listener = Callable[..., None]


class Session:
    """Stage-by-stage Bark runs with settings, staleness, history, voices, review and saving.

    ``models``: what :class:`bark_core.BarkModels` takes ("suno", a hub repo id, a local folder such as
    :func:`bark_core.tiny_model_dir`), or a ready ``BarkModels``. ``cache``: a
    :class:`~bark_core.cache.StageCache`, True for the default disk cache, a folder, or False for
    none; it is attached to the models (a given ``BarkModels`` without a cache gets this one).
    ``review_store``: where approve/reject decisions go (``bark_core.review``'s default when None).
    Other keyword arguments are settings (see :data:`DEFAULTS`); ``seed=N`` sets the three stage
    seeds the way ``bark_core.generate(seed=N)`` derives them.
    """

    def __init__(self, models: str | os.PathLike | BarkModels = "suno", *, cache: Any = True,
                 review_store: Any = None, **settings: Any):
        from bark_core.cache import StageCache

        if cache is True or cache is None:
            cache = StageCache()
        elif cache is False:
            cache = None
        elif isinstance(cache, str | os.PathLike):
            cache = StageCache(cache)
        self._given: BarkModels | None = None
        self._settings: dict[str, Any] = dict(DEFAULTS)
        self._settings.update(stage_seeds(0))
        self.seed: int | None = 0
        if isinstance(models, BarkModels):
            self._given = models
            if models.cache is None:
                models.cache = cache
            self.cache = models.cache
            self._settings.update(models=models.source, size=models.size_for("text"),
                                  device=models.device_for("text"), offload=models.offload,
                                  dtype=_dtype_name(models.dtype_for("text")))
        else:
            self.cache = cache
            self._settings["models"] = os.fspath(models)
        self._models: BarkModels | None = self._given
        self._models_cfg: tuple | None = self._model_cfg(self._settings) if self._given is not None else None
        self.review_store = review_store
        self.results: dict[str, StageResult] = {}
        self.takes: list[StudioTake] = []
        self.voices: dict[str, Any] = {}  # key -> Voice for uploaded, generated and recorded voices
        self._voice_cache: dict[tuple, Any] = {}
        self._errors: dict[str, tuple[str, str, bool]] = {}  # stage -> (signature, message, cancelled)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self.running: str | None = None
        self.busy = False
        self.set(**settings)

    # ---- events -------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event, **data)`` on every change; the widget redraws from these."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: str, **data: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(event, **data)
            except RunCancelled:
                raise
            except Exception:  # a drawing problem must never break a run
                log.debug("studio listener failed on %s", event, exc_info=True)

    # ---- settings -----------------------------------------------------------------------------
    @property
    def settings(self) -> dict[str, Any]:
        """A copy of every setting (the stage seeds included)."""
        return dict(self._settings)

    def set(self, **settings: Any) -> dict[str, Any]:
        """Change settings by name; returns those that changed. Stages they belong to, and all
        stages after them, become stale. ``seed=N`` derives the three stage seeds from N."""
        known = set(DEFAULTS) | {f"{s}_seed" for s in SEEDED}
        unknown = sorted(k for k in settings if k not in known and k != "seed")
        if unknown:
            raise StudioError(f"Unknown setting(s) {', '.join(unknown)}. Settings: {', '.join(sorted(known))}, seed.")
        new = {}
        master = None
        if "seed" in settings:
            master = _seed(settings.pop("seed"), "seed")
            new.update(stage_seeds(master))
        for key, value in settings.items():
            new[key] = _coerce(key, value)
        voice = new.get("voice")
        if voice is not None and voice not in self.voices and voice not in C.PRESET_NAMES:
            new["voice"] = self._voice_key(voice)
        if master is not None:
            self.seed = master
        if any(k.endswith("_seed") for k in settings):
            self.seed = None  # stage seeds no longer follow one master seed
        changed = {k: v for k, v in new.items() if self._settings.get(k) != v}
        self._settings.update(new)
        if changed:
            self.emit("settings", changed=changed)
        return changed

    def reroll(self, stage: str | None = None) -> int:
        """New random seed for one stage (or, with no stage, a new master seed for all): the dice."""
        seed = random_seed()
        if stage is None:
            self.set(seed=seed)
        else:
            _check_stage(stage, SEEDED)
            self.set(**{f"{stage}_seed": seed})
        return seed

    # ---- staleness ----------------------------------------------------------------------------
    @staticmethod
    def signature(stage: str, settings: Mapping[str, Any]) -> str:
        """Hash of everything that determines a stage's output: model settings and the settings of
        this stage and every stage before it."""
        idx = STAGES.index(stage)
        keys = [*MODEL_KEYS, *(k for s in STAGES[: idx + 1] for k in STAGE_KEYS[s])]
        blob = json.dumps({k: settings.get(k) for k in keys}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def state(self, stage: str) -> str:
        """"running", "error", "cancelled", "empty" (never run), "stale" (settings or input changed) or "fresh".

        "error" and "cancelled" last while the settings are those the stage failed with."""
        _check_stage(stage)
        if self.running == stage:
            return "running"
        sig = self.signature(stage, self._settings)
        err = self._errors.get(stage)
        if err is not None and err[0] == sig:
            return "cancelled" if err[2] else "error"
        res = self.results.get(stage)
        if res is None:
            return "empty"
        if res.signature != sig:
            return "stale"
        idx = STAGES.index(stage)
        if idx > 0:
            up = self.results.get(STAGES[idx - 1])
            if up is None or up.artifact.id != res.input_id or self.state(STAGES[idx - 1]) != "fresh":
                return "stale"
        return "fresh"

    def states(self) -> dict[str, str]:
        return {s: self.state(s) for s in STAGES}

    def error(self, stage: str) -> str | None:
        """The message of the stage's last error, while its settings are those that failed."""
        err = self._errors.get(stage)
        if err is None or err[0] != self.signature(stage, self._settings):
            return None
        return err[1]

    # ---- models and voices --------------------------------------------------------------------
    @staticmethod
    def _model_cfg(settings: Mapping[str, Any]) -> tuple:
        return tuple(settings[k] for k in MODEL_KEYS)

    def models(self) -> BarkModels:
        """The model set for the current model settings, built on first use (weights load lazily)."""
        cfg = self._model_cfg(self._settings)
        if self._models is None or self._models_cfg != cfg:
            s = self._settings
            self._models = BarkModels(s["models"], size=s["size"], device=s["device"], dtype=s["dtype"],
                                      offload=s["offload"], cache=self.cache)
            self._models_cfg = cfg
            self._voice_cache.clear()
        return self._models

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
        from bark_core.rights import voice_origin

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
        from bark_core.voices import load_voice_file

        if isinstance(source, bytes | bytearray | memoryview):
            stem = Path(name or "uploaded.npz").stem
            with tempfile.TemporaryDirectory(prefix="bark-studio-") as tmp:
                path = Path(tmp) / f"{stem}.npz"
                path.write_bytes(bytes(source))
                voice = load_voice_file(path, stem)
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
                         filename: str | None = None, select: bool = True) -> str:
        """A (partial) voice from a recording; the rights record (who, right, when) is required and
        travels with the voice into every label. ``audio`` is a file path or the file's bytes."""
        from bark_core.audio_io import read_audio
        from bark_core.rights import RightsRecord
        from bark_core.voices import voice_from_audio

        record = RightsRecord(who=who, right=right, when=when, evidence=evidence, note=note)  # fails first
        if isinstance(audio, bytes | bytearray | memoryview):
            blob = bytes(audio)
            suffix = Path(filename or "recording.wav").suffix or ".wav"
            with tempfile.TemporaryDirectory(prefix="bark-studio-") as tmp:
                path = Path(tmp) / f"recording{suffix}"
                path.write_bytes(blob)
                samples, rate = read_audio(path)
        else:
            path = Path(audio)
            filename = filename or path.name
            samples, rate = read_audio(path)
            blob = path.read_bytes()
        name = name or Path(filename or "recording").stem
        voice = voice_from_audio(self.models(), samples, rights=record, name=name, sample_rate=rate)
        # which recording it was, so the rights record can be matched to it later
        voice.source = {**voice.source, "file": filename or "recording", "sha256": hashlib.sha256(blob).hexdigest()}
        return self._add_voice(f"audio:{name}#{voice.id}", voice, select)

    # ---- runs ---------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the running stage at its next progress step (and skip the stages after it)."""
        if self.busy:
            self._cancel.set()
            self.emit("message", text="Cancelling…")

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        if not self._lock.acquire(blocking=False):
            raise StudioError("A run is in progress; wait for it or press Cancel.")
        self._cancel.clear()
        self.busy = True
        self.emit("busy", busy=True)
        try:
            yield
        finally:
            self.running = None
            self.busy = False
            self._lock.release()
            self.emit("busy", busy=False)

    def run(self, stage: str = "label") -> StudioTake:
        """Run ``stage``, first bringing every missing or stale stage before it up to date.

        Synchronous: returns the take the results belong to. Errors are shown (``error`` events)
        and then raised, so a script stops where a person would see the message.
        """
        stage = _check_stage(stage)
        with self._guard():
            snap = dict(self._settings)
            target = STAGES.index(stage)
            self.emit("run", stage=stage)
            t0 = time.perf_counter()
            for s in STAGES[: target + 1]:
                if s != stage and self.state(s) == "fresh":
                    continue
                if self._cancel.is_set():
                    raise self._cancelled(s)
                self._run_stage(s, snap)
            take = self._record_take(snap, target)
            self.emit("done", stage=stage, take=take, seconds=time.perf_counter() - t0)
            return take

    def run_all(self) -> StudioTake:
        """Every stage, text to labelled audio."""
        return self.run("label")

    def _cancelled(self, stage: str) -> RunCancelled:
        exc = RunCancelled(f"Cancelled before the {stage} stage finished; earlier results are kept.")
        self._errors[stage] = (self.signature(stage, self._settings), str(exc), True)
        self.emit("error", stage=stage, message=str(exc), cancelled=True)
        return exc

    def _progress(self, stage: str) -> Callable[[int, int], None]:
        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise RunCancelled(f"Cancelled during the {stage} stage; earlier results are kept.")
            self.emit("progress", stage=stage, done=int(done), total=int(total))

        return progress

    def _run_stage(self, stage: str, snap: dict[str, Any]) -> StageResult:
        sig = self.signature(stage, snap)
        self.running = stage
        self._errors.pop(stage, None)
        self.emit("stage", stage=stage)
        t0 = time.perf_counter()
        try:
            models = self.models()
            need = MODEL_OF[stage]
            if need is not None and not models.is_loaded(need):
                self.emit("message", text=f"Loading the {need} model for the {stage} stage…")
            self.emit("progress", stage=stage, done=0, total=1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                art, input_id = self._compute(stage, snap, models)
            for w in caught:  # other libraries' warnings are not the user's business here
                if not _ours(w.category):
                    log.debug("warning during %s: %s", stage, w.message)
            result = StageResult(stage=stage, artifact=art, cache_hit=bool(art.cache_hit),
                                 seconds=time.perf_counter() - t0, signature=sig, input_id=input_id,
                                 warnings=[str(w.message) for w in caught if _ours(w.category)])
            if stage == "coarse" and snap.get("preview"):
                self._check_cancel(stage)
                result.preview = self._preview(models, art)
            if stage == "decode":
                from bark_core.quality import check

                result.quality = check(art, text=snap["text"])
            self.results[stage] = result
            self.running = None
            self.emit("progress", stage=stage, done=1, total=1)
            self.emit("result", stage=stage, result=result)
            return result
        except RunCancelled as exc:
            self._errors[stage] = (sig, str(exc), True)
            self.emit("error", stage=stage, message=str(exc), cancelled=True)
            raise
        except Exception as exc:
            msg = error_message(exc)
            if not isinstance(exc, BarkError | ValueError):
                log.debug("studio: %s stage failed", stage, exc_info=True)
            self._errors[stage] = (sig, msg, False)
            self.emit("error", stage=stage, message=msg, cancelled=False)
            raise
        finally:
            self.running = None

    def _check_cancel(self, stage: str) -> None:
        if self._cancel.is_set():
            raise RunCancelled(f"Cancelled during the {stage} stage; earlier results are kept.")

    @staticmethod
    def _preview(models: BarkModels, coarse: Any) -> Any:
        from bark_core.generation import decode_preview

        return decode_preview(models, coarse)

    def preview(self) -> Any:
        """Decode the current coarse codes alone (listen before fine), if not done during the run."""
        res = self.results.get("coarse")
        if res is None:
            raise StudioError("There are no coarse codes to preview yet; run the coarse stage first.")
        if res.preview is None:
            res.preview = self._preview(self.models(), res.artifact)
            self.emit("result", stage="coarse", result=res)
        return res.preview

    def _compute(self, stage: str, s: dict[str, Any], models: BarkModels) -> tuple[Any, str | None]:
        import bark_core
        from bark_core.generation import decode

        voice = self.voice(s["voice"]) if stage in SEEDED else None
        prog = self._progress(stage)
        if stage == "semantic":
            art = bark_core.generate_semantic(
                models, s["text"], voice, temp=s["semantic_temp"], top_k=s["semantic_top_k"],
                top_p=s["semantic_top_p"], min_eos_p=s["min_eos_p"], max_gen_duration_s=s["max_gen_duration_s"],
                allow_early_stop=s["allow_early_stop"], seed=s["semantic_seed"], progress=prog)
            return art, None
        upstream = self.results[STAGES[STAGES.index(stage) - 1]].artifact
        if stage == "coarse":
            art = bark_core.generate_coarse(
                models, upstream, voice, temp=s["coarse_temp"], top_k=s["coarse_top_k"], top_p=s["coarse_top_p"],
                max_coarse_history=s["max_coarse_history"], sliding_window_len=s["sliding_window_len"],
                seed=s["coarse_seed"], progress=prog)
        elif stage == "fine":
            art = bark_core.generate_fine(models, upstream, voice, temp=s["fine_temp"], seed=s["fine_seed"],
                                          progress=prog)
        elif stage == "decode":
            art = decode(models, upstream)
        else:
            art = self._label(upstream, s)
        return art, upstream.id

    def _label(self, audio: Any, s: dict[str, Any]) -> Any:
        from bark_core import Take
        from bark_core.label import label
        from bark_core.review import review_metadata

        decode_res = self.results["decode"]
        meta = Take(semantic=self.results["semantic"].artifact, coarse=self.results["coarse"].artifact,
                    fine=self.results["fine"].artifact, audio=audio).label_meta()
        meta["review"] = review_metadata(audio, store=self.review_store)
        if decode_res.quality is not None:
            meta["qc"] = decode_res.quality.summary()
        return label(audio, include_text=bool(s["include_text"]), **meta)

    def _record_take(self, snap: dict[str, Any], target: int) -> StudioTake:
        """Extend the last take when this run only added stages to it; otherwise start a new take."""
        chain = {s: self.results[s] for s in STAGES[: target + 1]}
        last = self.takes[-1] if self.takes else None
        if last is not None and all(chain[s].artifact.id == r.artifact.id for s, r in last.results.items()
                                    if s in chain):
            added = [s for s in chain if s not in last.results]
            if added:
                last.results.update({s: chain[s] for s in added})
                last.settings = snap
                self.emit("take", take=last, new=False)
            return last
        take = StudioTake(number=len(self.takes) + 1, settings=snap, results=dict(chain),
                          voice=snap.get("voice"))
        self.takes.append(take)
        self.emit("take", take=take, new=True)
        return take

    # ---- history, review, saving ----------------------------------------------------------------
    def take(self, which: StudioTake | int | None = None) -> StudioTake:
        """A take by number (1-based, as shown), the take itself, or the last one for None."""
        if isinstance(which, StudioTake):
            return which
        if not self.takes:
            raise StudioError("There are no takes yet; run a stage first.")
        if which is None:
            return self.takes[-1]
        for t in self.takes:
            if t.number == which:
                return t
        raise StudioError(f"There is no take {which}; takes are numbered 1..{len(self.takes)}.")

    def compare(self, a: StudioTake | int, b: StudioTake | int) -> dict[str, Any]:
        """Two takes side by side: the settings that differ, and each take's stages."""
        ta, tb = self.take(a), self.take(b)
        keys = sorted(set(ta.relevant_settings()) | set(tb.relevant_settings()))
        diff = {k: (ta.settings.get(k), tb.settings.get(k)) for k in keys if ta.settings.get(k) != tb.settings.get(k)}
        return {"a": ta, "b": tb, "differences": diff}

    def _audio_of(self, take: StudioTake) -> Any:
        if take.audio is None:
            raise StudioError(f"Take {take.number} has no audio yet; run it through decode, then listen and review.")
        return take.audio

    def review(self, take: StudioTake | int | None = None) -> Any:
        """The human review that applies to the take's audio (``bark_core.review.review_state``)."""
        from bark_core.review import review_state

        return review_state(self._audio_of(self.take(take)), store=self.review_store)

    def approve(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record that ``reviewer`` listened and finds the take fit for use (with its quality report)."""
        from bark_core.review import approve

        t = self.take(take)
        review = approve(self._audio_of(t), reviewer, note, store=self.review_store, quality=t.quality)
        self.emit("review", take=t, review=review)
        return review

    def reject(self, take: StudioTake | int | None = None, *, reviewer: str, note: str = "") -> Any:
        """Record that ``reviewer`` listened and the take must not be used; the note says why."""
        from bark_core.review import reject

        t = self.take(take)
        review = reject(self._audio_of(t), reviewer, note, store=self.review_store, quality=t.quality)
        self.emit("review", take=t, review=review)
        return review

    def save_take(self, take: StudioTake | int | None = None, folder: str | os.PathLike = ".", *,
                  artifacts: bool = True, audio: bool = False, voice: bool = False, audio_format: str = "wav",
                  overwrite: bool = False, public: bool = False) -> list[Path]:
        """Write a take's artifacts (``.npz``), its audio (labelled, through ``bark_core.export``) and/or
        its voice into ``folder``; returns the paths written. ``public=True`` needs an approval."""
        from bark_core.export import export_audio

        t = self.take(take)
        folder = Path(folder).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"take{t.number:03d}"
        written: list[Path] = []
        if artifacts:
            for stage in t.stages:
                path = folder / f"{stem}.{stage}.npz"
                if path.exists() and not overwrite:
                    raise StudioError(f"{path} already exists; tick overwrite or choose another folder.")
                written.append(t.results[stage].artifact.save(path, overwrite=True))
        if audio:
            audio_art = self._audio_of(t)
            meta = t.as_take().label_meta()
            written.append(export_audio(audio_art, folder / f"{stem}.{audio_format.lower().lstrip('.')}",
                                        overwrite=overwrite, quality=t.quality, review_store=self.review_store,
                                        public=public, include_text=bool(t.settings.get("include_text")), **meta))
        if voice:
            if t.fine is None:
                raise StudioError(f"Take {t.number} has no fine codes; a voice needs the fine stage.")
            path = folder / f"{stem}.voice.npz"
            if path.exists() and not overwrite:
                raise StudioError(f"{path} already exists; tick overwrite or choose another folder.")
            written.append(_take_voice(t).save(path))
        if not written:
            raise StudioError("Nothing to save: choose artifacts, audio or voice.")
        self.emit("saved", take=t, paths=written)
        return written

    def cache_stats(self) -> dict[str, Any]:
        """Hits and misses of the stage cache (empty without a cache)."""
        return {} if self.cache is None else self.cache.stats.to_dict()


def _ours(category: type) -> bool:
    """bark_core's own warnings (e.g. text cut to the 256-token window) belong in the stage panel."""
    return issubclass(category, UserWarning) and category.__module__.startswith("bark_core")


def _take_voice(take: StudioTake) -> Any:
    from bark_core import voice_from_artifacts

    return voice_from_artifacts(take.semantic, take.coarse, take.fine, name=f"take{take.number}")


def _voice_title(key: str, voice: Any) -> str:
    kind = key.split(":", 1)[0]
    what = {"file": "file", "take": "from take", "audio": "from recording"}.get(kind, kind)
    return f"{voice.name} ({what})"


def _dtype_name(dtype: Any) -> str:
    return {"torch.float32": "fp32", "torch.float16": "fp16", "torch.bfloat16": "bf16"}.get(str(dtype), "auto")


def _check_stage(stage: str, allowed: tuple[str, ...] = STAGES) -> str:
    if stage not in allowed:
        raise StudioError(f"Unknown stage {stage!r}; use one of {', '.join(allowed)}.")
    return stage


def _seed(value: Any, name: str) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise StudioError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {value!r}.")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise StudioError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {value!r}.")
    return int(value)


_OPTIONAL_FLOATS = {"semantic_temp", "coarse_temp", "fine_temp", "semantic_top_p", "coarse_top_p", "min_eos_p",
                    "max_gen_duration_s"}
_OPTIONAL_INTS = {"semantic_top_k", "coarse_top_k"}
_INTS = {"max_coarse_history", "sliding_window_len"}
_BOOLS = {"allow_early_stop", "include_text", "preview", "offload"}
_CHOICES = {"size": ("large", "small"), "device": ("auto", "cpu", "cuda", "mps"),
            "dtype": ("auto", "fp32", "fp16", "bf16")}


def _coerce(key: str, value: Any) -> Any:
    """Settings in the form the core takes; 0 means "off" (None) for the optional numbers, as in the UI."""
    if key.endswith("_seed"):
        return _seed(value, key)
    if key in _OPTIONAL_FLOATS:
        if value is None or value == 0:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise StudioError(f"{key} must be a number (0 for off), got {value!r}.") from None
        if value < 0:
            raise StudioError(f"{key} must not be negative, got {value}.")
        return value
    if key in _OPTIONAL_INTS | _INTS:
        if key in _OPTIONAL_INTS and (value is None or value == 0):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 0:
            raise StudioError(f"{key} must be a whole number, got {value!r}.")
        return int(value)
    if key in _BOOLS:
        return bool(value)
    if key in _CHOICES:
        value = str(value)
        if value not in _CHOICES[key] and not (key == "device" and value.startswith(("cuda:", "mps:"))):
            raise StudioError(f"{key} must be one of {', '.join(_CHOICES[key])}, got {value!r}.")
        return value
    if key == "models":
        value = os.fspath(value).strip() if value is not None else ""
        if not value:
            raise StudioError("models must name a model source: 'suno', a hub repo id or a folder.")
        return value
    if key == "voice":
        if value in (None, "", "none"):
            return None
        if hasattr(value, "fine"):  # a Voice object: keep it as a custom voice
            raise StudioError("Pass voices by name or path; add Voice objects with add_voice().")
        return os.fspath(value)
    if key == "text":
        return "" if value is None else str(value)
    return value


__all__ = ["STAGES", "DEFAULTS", "Session", "StageResult", "StudioTake", "StudioError", "RunCancelled",
           "stage_seeds", "random_seed", "error_message"]
