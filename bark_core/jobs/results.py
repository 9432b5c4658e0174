"""The job's results log: one JSON line per finished row, appended and synced, never rewritten.

A kill can cut at most the line being written; readers skip a damaged line and the next append
starts on a fresh line, so the log stays readable after any crash.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOG_NAME = "results.jsonl"
STATUSES = ("ok", "failed", "invalid")


def utc_now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class ResultsLog:
    """Append-only JSONL of row results in a job folder (``results.jsonl``)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOG_NAME
        self._fh: Any = None
        self.damaged_lines = 0

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def records(self) -> list[dict[str, Any]]:
        """Every readable record, oldest first; damaged lines (a kill mid-write) are counted and skipped."""
        if not self.path.is_file():
            return []
        out, bad = [], 0
        with open(self.path, "rb") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    bad += 1
                    continue
                if isinstance(rec, dict) and rec.get("status") in STATUSES:
                    out.append(rec)
                else:
                    bad += 1
        self.damaged_lines = bad
        return out

    def latest_by(self, field: str) -> dict[str, dict[str, Any]]:
        """The last record for each value of ``field`` ("id" or "key")."""
        latest: dict[str, dict[str, Any]] = {}
        for rec in self.records():
            value = rec.get(field)
            if isinstance(value, str):
                latest[value] = rec
        return latest

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a line and sync it to disk before returning."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a+b")  # noqa: SIM115 - held open for the job's many appends
            self._fh.seek(0, os.SEEK_END)
            if self._fh.tell() > 0:
                self._fh.seek(-1, os.SEEK_END)
                if self._fh.read(1) != b"\n":  # the last writer was killed mid-line
                    self._fh.write(b"\n")
        line = json.dumps({"time": utc_now(), **record}, ensure_ascii=False, sort_keys=False)
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
