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

The pieces that do not run stages live next door so that each can be read on its own:
``settings`` (stage keys, defaults, coercion, the studio's errors), ``takes`` (results, takes,
history), ``voices_state`` (voice picker entries) and ``actions`` (review and saving). ``Session``
puts them together, and this module still offers every name it offered before the split.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from bark_core import BarkError, BarkModels
from bark_core import constants as C

from .actions import ReviewExportMixin
from .inputs import InputsMixin, key_fingerprint
from .longform_state import LongFormMixin
from .settings import (
    DEFAULTS,
    MODEL_KEYS,
    SEEDED,
    STAGE_KEYS,
    STAGES,
    RunCancelled,
    StudioError,
    _check_stage,
    _coerce,
    _seed,
    error_message,
    precision_choices,
    random_seed,
    stage_seeds,
)
from .settings import EXTRA_KEYS as EXTRA_KEYS  # re-exported: these were defined here before the split
from .settings import MAX_SEED as MAX_SEED
from .settings import TITLES as TITLES
from .status import LiveMixin, progress_line
from .stream_state import StreamMixin
from .takes import HistoryMixin, StageResult, StudioTake, same_take
from .voices_state import VoicesMixin

log = logging.getLogger("bark_studio")

Listener = Callable[..., None]


class Session(InputsMixin, LiveMixin, LongFormMixin, StreamMixin, VoicesMixin, HistoryMixin, ReviewExportMixin):
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
        from bark_core import StageCache

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
            precision = models.precision_for("text").choice
            self._settings.update(models=models.source, size=models.size_for("text"),
                                  device=models.device_for("text"), offload=models.offload,
                                  dtype=precision if precision in precision_choices() else "auto",
                                  decoder=models.decoder if isinstance(models.decoder, str) else "auto")
            self._hook_loads(models)
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
        self.selected: int | None = None  # the take the panels, players and review show
        self._invalid: dict[str, tuple[str, str]] = {}  # setting -> (typed text, message): blocks runs
        self._watermark_key: str | None = None  # the secret itself; settings hold only its fingerprint
        self.clock: Callable[[], float] = time.monotonic  # for elapsed/remaining; tests pass a fake clock
        self._stage_started = 0.0
        self._progress_pct = -1
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
        secret = self._watermark_key
        if "watermark_key" in settings:
            secret = settings.pop("watermark_key")
            secret = None if secret in (None, "", "default") else str(secret)
            new["watermark_key"] = key_fingerprint(secret)
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
        self._watermark_key = secret
        fixed = [k for k in self._invalid if k in new or (k == "seed" and master is not None)
                 or (k.endswith("_seed") and master is not None)]
        for k in fixed:
            del self._invalid[k]
        if changed:
            self.emit("settings", changed=changed)
        if fixed:
            self.emit("invalid", keys=fixed)
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
        """"running", "invalid" (typed input it depends on cannot be used), "error", "cancelled", "empty"
        (never run), "stale" (settings or input changed) or "fresh".

        "error" and "cancelled" last while the settings are those the stage failed with."""
        _check_stage(stage)
        if self.running == stage:
            return "running"
        if self.invalid_inputs(stage):
            return "invalid"
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
        """The message of the stage's last error, while its settings are those that failed; typed input
        that could not be used comes first (it stays until it is fixed)."""
        bad = self.invalid_inputs(stage)
        if bad:
            return " ".join(bad.values())
        err = self._errors.get(stage)
        if err is None or err[0] != self.signature(stage, self._settings):
            return None
        return err[1]

    # ---- models -------------------------------------------------------------------------------
    @staticmethod
    def _model_cfg(settings: Mapping[str, Any]) -> tuple:
        return tuple(settings[k] for k in MODEL_KEYS)

    def models(self) -> BarkModels:
        """The model set for the current model settings, built on first use (weights load lazily)."""
        cfg = self._model_cfg(self._settings)
        if self._models is None or self._models_cfg != cfg:
            s = self._settings
            self._models = BarkModels(s["models"], size=s["size"], device=s["device"], dtype=s["dtype"],
                                      decoder=s["decoder"], offload=s["offload"], cache=self.cache)
            self._hook_loads(self._models)
            self._models_cfg = cfg
            self._voice_cache.clear()
        return self._models

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
        self.check_inputs(stage)
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
            done, total = int(done), int(total)
            pct = 100 if total <= 0 else 100 * done // total
            if pct == self._progress_pct and done != total:
                return  # at most a hundred updates a stage, however many tokens it makes
            self._progress_pct = pct
            elapsed = self.clock() - self._stage_started
            left = elapsed * (total - done) / done if 0 < done < total else None
            self.emit("progress", stage=stage, done=done, total=total, elapsed=elapsed, remaining=left,
                      text=progress_line(stage, done, total, elapsed, left))

        return progress

    def _run_stage(self, stage: str, snap: dict[str, Any]) -> StageResult:
        sig = self.signature(stage, snap)
        self.running = stage
        self._errors.pop(stage, None)
        self.emit("stage", stage=stage)
        t0 = time.perf_counter()
        self._stage_started = self.clock()
        self._progress_pct = -1
        try:
            models = self.models()
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
                self.results[stage] = result  # the codes are kept even if the preview is cancelled
                result.preview = self._cancellable_preview(models, art)
            if stage == "decode":
                from bark_core.quality import check

                result.quality = check(art, text=snap["text"])
            self.results[stage] = result
            self.running = None
            self.emit("progress", stage=stage, done=1, total=1, elapsed=result.seconds, remaining=None,
                      text=progress_line(stage, 1, 1, result.seconds, None, cache_hit=result.cache_hit))
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

    def _compute(self, stage: str, s: dict[str, Any], models: BarkModels) -> tuple[Any, str | None]:
        import bark_core
        from bark_core import decode

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
        from bark_core.label import label, review_metadata

        decode_res = self.results["decode"]
        meta = Take(semantic=self.results["semantic"].artifact, coarse=self.results["coarse"].artifact,
                    fine=self.results["fine"].artifact, audio=audio, seed=self.seed).label_meta()
        meta["review"] = review_metadata(audio, store=self.review_store)
        if decode_res.quality is not None:
            meta["qc"] = decode_res.quality.summary()
        return label(audio, self._watermark_key, include_text=bool(s["include_text"]), **meta)

    def _record_take(self, snap: dict[str, Any], target: int) -> StudioTake:
        """A run that made what a take already holds (same artifact ids, e.g. all from the cache) is
        that take again, extended by any stages it adds; anything else is a new take."""
        chain = {s: self.results[s] for s in STAGES[: target + 1]}
        known = next((t for t in reversed(self.takes) if same_take(t, chain)), None)
        if known is not None:
            added = [s for s in chain if s not in known.results]
            if added:
                known.results.update({s: chain[s] for s in added})
                known.settings = snap
                known.watermark_key = self._watermark_key
            self.selected = known.number
            self.emit("take", take=known, new=False)
            return known
        take = StudioTake(number=len(self.takes) + 1, settings=snap, results=dict(chain),
                          voice=snap.get("voice"), seed=self.seed, watermark_key=self._watermark_key)
        self.takes.append(take)
        self.selected = take.number
        self.emit("take", take=take, new=True)
        return take

    def cache_stats(self) -> dict[str, Any]:
        """Hits and misses of the stage cache (empty without a cache)."""
        return {} if self.cache is None else self.cache.stats.to_dict()


def _ours(category: type) -> bool:
    """bark_core's own warnings (e.g. text cut to the 256-token window) belong in the stage panel."""
    return issubclass(category, UserWarning) and category.__module__.startswith("bark_core")


__all__ = ["STAGES", "DEFAULTS", "Session", "StageResult", "StudioTake", "StudioError", "RunCancelled",
           "stage_seeds", "random_seed", "error_message"]
