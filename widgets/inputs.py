"""What a person typed, and which take is on screen: the two things a view must never misstate.

Typed input that cannot be used (a seed of ``1.5`` or ``-5``) is kept here, with its message, until
it is fixed: the stage it belongs to shows it as invalid and refuses to run, so a field can never
show one value while another is used. Selecting a take makes it the session's state (its settings,
results and seed), so the panels, players, pictures and review all show, and act on, that one take.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .settings import MODEL_KEYS, SEEDED, STAGE_KEYS, STAGES, StudioError, _check_stage
from .takes import StudioTake


def key_fingerprint(key: str | None) -> str:
    """What the settings (and so the history and cache signatures) hold instead of a watermark key."""
    if key is None:
        return "default"
    return "custom " + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _stage_of(key: str) -> tuple[str, ...]:
    if key in MODEL_KEYS:
        return STAGES
    if key == "seed":
        return SEEDED
    return tuple(s for s in STAGES if key in STAGE_KEYS[s])


class InputsMixin:
    """Typed input and the selected take, for :class:`~bark_studio.session.Session`."""

    def enter(self, key: str, value: Any) -> bool:
        """A value typed into the field of setting ``key`` ("seed" for the master seed): used when
        valid; otherwise kept as invalid input, shown with its stage and blocking its runs until
        fixed. Returns whether it was used."""
        try:
            self.set(**{key: value})
        except StudioError as exc:
            self._invalid[key] = (str(value), str(exc))
            self.emit("invalid", keys=[key])
            return False
        return True

    def invalid_inputs(self, stage: str | None = None) -> dict[str, str]:
        """Setting -> message for typed input not used (of one stage, or all)."""
        return {k: msg for k, (_, msg) in self._invalid.items() if stage is None or stage in _stage_of(k)}

    def typed(self, key: str) -> str | None:
        """The invalid text still in a field (None when the field shows the value in use)."""
        entry = self._invalid.get(key)
        return None if entry is None else entry[0]

    def check_inputs(self, stage: str) -> None:
        """Refuse a run up to ``stage`` while any input it depends on is invalid."""
        upto = STAGES[: STAGES.index(_check_stage(stage)) + 1]
        bad = {k: m for s in upto for k, m in self.invalid_inputs(s).items()}
        if bad:
            raise StudioError("Not run: fix the invalid input first. " + " ".join(dict.fromkeys(bad.values())))

    def select(self, which: StudioTake | int | None = None) -> StudioTake:
        """Show one take: its settings, seed and stage results become the session's, so every panel,
        player and picture shows it and review acts on it; a run continues from it."""
        take = self.take(which)
        if self.busy:
            raise StudioError("A run is in progress; select a take when it has finished (or press Cancel).")
        old = dict(self._settings)
        self._settings.update({k: v for k, v in take.settings.items() if k in self._settings})
        self._watermark_key = take.watermark_key
        self.seed = take.seed
        self.results = dict(take.results)
        self._errors.clear()
        cleared = list(self._invalid)
        self._invalid.clear()
        self.selected = take.number
        changed = {k: v for k, v in self._settings.items() if old.get(k) != v}
        if changed:
            self.emit("settings", changed=changed)
        if cleared:
            self.emit("invalid", keys=cleared)
        self.emit("selected", take=take)
        return take
