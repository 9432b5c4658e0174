"""The job's report: ``report.html`` (a player, the QC figures and any error per row) and
``report.csv`` (the same table for spreadsheets), both built from the results log alone."""

from __future__ import annotations

import csv
import html
import io
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..fileio import atomic_write

REPORT_HTML = "report.html"
REPORT_CSV = "report.csv"
COLUMNS = ("id", "status", "speaker", "voice", "seed", "duration_s", "qc", "snr_db", "loudness_lufs",
           "speech_activity", "flags", "file", "error", "text")

_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
tr.failed,tr.invalid{background:#fde8e8}.warn{color:#8a5a00}.fail{color:#b00020}audio{height:28px}
.text{max-width:28em}"""


def _latest(records: list[dict[str, Any]], current: dict[str, str | None] | None) -> list[dict[str, Any]]:
    """One line per row: its last record, in job order. With ``current`` (row id -> render key, None for
    invalid rows), only the job's rows appear, and only records of their current key count, so a row
    edited since its last render is not shown with its old file."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        rid = rec.get("id")
        if not isinstance(rid, str):
            continue
        if current is not None and (rid not in current or (current[rid] is not None and
                                                            rec.get("key") != current[rid])):
            continue
        latest[rid] = rec
    ids = list(current) if current is not None else list(latest)
    return [latest[i] for i in ids if i in latest]


def table(records: list[dict[str, Any]], current: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """The report's rows as flat dicts with :data:`COLUMNS`."""
    rows = []
    for rec in _latest(records, current):
        scores = rec.get("scores") or {}
        flags = [*(scores.get("fail") or []), *(scores.get("warn") or [])]
        qc = "" if not scores else ("pass" if scores.get("passed") else "fail")
        if qc == "pass" and scores.get("warn"):
            qc = "warn"
        rows.append({
            "id": rec.get("id"), "status": rec.get("status"), "speaker": rec.get("speaker") or "",
            "voice": rec.get("voice") or "", "seed": rec.get("seed", ""), "duration_s": rec.get("duration_s") or "",
            "qc": qc, "snr_db": scores.get("snr_db", ""), "loudness_lufs": scores.get("loudness_lufs", ""),
            "speech_activity": scores.get("speech_activity", ""), "flags": " ".join(flags),
            "file": rec.get("file") or "", "error": rec.get("error") or "; ".join(rec.get("warnings") or []),
            "text": rec.get("text") or "",
        })
    return rows


def _fmt(v: Any) -> str:
    if v is None or v == "":
        return ""
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def render_html(rows: list[dict[str, Any]], title: str = "Render report") -> str:
    counts: dict[str, int] = {}
    for r in rows:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    audio_s = sum(float(r["duration_s"] or 0) for r in rows if r["status"] == "ok")
    head = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no rows"
    out = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
           f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<p>{len(rows)} rows: {html.escape(head)}; {audio_s:.1f} s of audio. Every file carries the "
           "synthetic-audio label (watermark and tags).</p>",
           "<table><thead><tr><th>id</th><th>status</th><th>speaker / voice</th><th>seed</th><th>audio</th>"
           "<th>s</th><th>QC</th><th>SNR dB</th><th>LUFS</th><th>text</th><th>error / note</th></tr></thead><tbody>"]
    for r in rows:
        player = ""
        if r["file"] and r["status"] == "ok":
            src = html.escape(quote(str(r["file"])), quote=True)
            player = f"<audio controls preload='none' src='{src}'></audio>"
        qc = html.escape(r["qc"])
        if r["flags"]:
            cls = "fail" if r["qc"] == "fail" else "warn"
            qc += f" <span class='{cls}'>{html.escape(r['flags'])}</span>"
        who = " / ".join(html.escape(str(x)) for x in (r["speaker"], r["voice"]) if x)
        out.append(
            f"<tr class='{html.escape(str(r['status']))}'><td>{html.escape(str(r['id']))}</td>"
            f"<td>{html.escape(str(r['status']))}</td><td>{who}</td><td>{html.escape(_fmt(r['seed']))}</td>"
            f"<td>{player}</td><td>{_fmt(r['duration_s'])}</td><td>{qc}</td><td>{_fmt(r['snr_db'])}</td>"
            f"<td>{_fmt(r['loudness_lufs'])}</td><td class='text'>{html.escape(str(r['text']))}</td>"
            f"<td class='fail'>{html.escape(str(r['error']))}</td></tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out)


def render_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _fmt(v) for k, v in r.items()})
    return buf.getvalue()


def write_report(out_dir: str | os.PathLike, records: list[dict[str, Any]],
                 current: dict[str, str | None] | None = None) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.csv`` into the job folder (atomically) and return their paths."""
    out = Path(out_dir)
    rows = table(records, current)
    paths = out / REPORT_HTML, out / REPORT_CSV
    for path, text in zip(paths, (render_html(rows, f"Render report: {out.name}"), render_csv(rows)), strict=True):
        with atomic_write(path, overwrite=True) as fh:
            fh.write(text.encode("utf-8"))
    return paths
