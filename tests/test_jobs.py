"""Render jobs (bark_core.jobs, ``bark-core render``): manifests checked up front with line numbers,
per-row seeds that ignore order, 200 rows on the tiny set into labelled content-addressed files, a
results log that survives a SIGKILL, resume, failing rows, and the report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bark_core import BarkModels
from bark_core.jobs import (
    LOG_NAME,
    JobError,
    ManifestError,
    ModelSpec,
    ResultsLog,
    load_manifest,
    plan_job,
    render_job,
    row_seed,
)
from bark_core.label import detect, read_label

ROOT = Path(__file__).resolve().parents[1]
VOICES = ["v2/en_speaker_6", "v2/de_speaker_3", None, "announcer"]
# short takes with an argmax fine stage keep 200 rows on the tiny set to about a minute on 2 busy cores
FAST = {"max_gen_duration_s": 0.1, "fine_temp": None}


def manifest_rows(n: int, start: int = 0, **extra) -> list[dict]:
    return [{"id": f"line-{i:03d}", "text": f"This is line number {i}.", "voice": VOICES[i % len(VOICES)],
             "settings": dict(FAST), **extra} for i in range(start, start + n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``bark-core`` in a process of its own (for the kill test)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "bark_core.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture()
def spec(tiny_dir: Path) -> ModelSpec:
    return ModelSpec(models=str(tiny_dir), device="cpu")


# ---- the manifest ----------------------------------------------------------------------------------

def test_every_bad_row_is_listed_with_its_line_before_any_work(tmp_path: Path, tiny_models: BarkModels):
    lines = [
        json.dumps({"id": "ok-1", "text": "Fine.", "voice": "v2/en_speaker_6"}),
        json.dumps({"id": "empty", "text": "   ", "voice": "v2/en_speaker_6"}),
        "",
        json.dumps({"id": "ok-1", "text": "Same id again."}),
        json.dumps({"id": "who", "text": "Unknown voice.", "voice": "v2/en_speeker_6"}),
        "{not json",
        json.dumps({"id": "hot", "text": "Too hot.", "settings": {"coarse_temp": 9, "colour": "blue"}}),
        json.dumps({"id": "up", "text": "Escapes.", "out": "../../etc/x.wav"}),
        json.dumps({"id": "neg", "text": "Bad seed.", "seed": -3}),
    ]
    path = tmp_path / "job.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError) as err:
        load_manifest(path, resolve_voice=tiny_models.voice)
    by_line = {}
    for p in err.value.problems:
        by_line.setdefault(p.line, []).append(p.message)
    assert sorted(by_line) == [2, 4, 5, 6, 7, 8, 9]
    assert "text is empty" in by_line[2][0]
    assert "duplicate id 'ok-1': line 1" in by_line[4][0]
    assert "Unknown voice 'v2/en_speeker_6'" in by_line[5][0] and "v2/en_speaker_6" in by_line[5][0]
    assert "not valid JSON" in by_line[6][0]
    assert any("coarse_temp=9" in m for m in by_line[7]) and any("'colour'" in m for m in by_line[7])
    assert "inside the output folder" in by_line[8][0]
    assert "seed -3" in by_line[9][0]
    msg = str(err.value)
    assert "--skip-invalid" in msg and all(f"line {n}" in msg for n in by_line)

    kept = load_manifest(path, resolve_voice=tiny_models.voice, skip_invalid=True)
    assert [r.id for r in kept.rows] == ["ok-1"]
    assert sorted({p.line for p in kept.skipped}) == sorted(by_line)


def test_csv_rows_with_settings_seed_and_out(tmp_path: Path):
    path = tmp_path / "job.csv"
    path.write_text('id,text,voice,seed,speaker,out,settings\n'
                    'a,"Hello, there.",v2/en_speaker_6,12,Ann,ch1/a.flac,"{""coarse_temp"": 0.6}"\n'
                    'b,"Two\nlines",,,,,\n'
                    'c,,v2/en_speaker_6,,,,\n')
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert [(p.line, p.row_id) for p in err.value.problems] == [(5, "c")]  # line numbers count the embedded newline
    rows = load_manifest(path, skip_invalid=True).rows
    a, b = rows
    assert (a.id, a.text, a.voice, a.seed, a.speaker, a.out, a.settings) == (
        "a", "Hello, there.", "v2/en_speaker_6", 12, "Ann", "ch1/a.flac", {"coarse_temp": 0.6})
    assert (b.text, b.voice, b.seed, b.settings) == ("Two\nlines", None, None, {})
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("name,words\nx,y\n")
    with pytest.raises(ManifestError, match="id and text"):
        load_manifest(bad_header)


def test_row_seeds_and_names_ignore_order_and_follow_content(tiny_models: BarkModels, spec: ModelSpec):
    rows = manifest_rows(6)
    plan = plan_job(load_manifest(rows), tiny_models, spec=spec, job_seed=7)
    shuffled = plan_job(load_manifest(rows[::-1]), tiny_models, spec=spec, job_seed=7)
    first = {t.id: (t.seed, t.key, t.relpath) for t in plan.tasks}
    assert first == {t.id: (t.seed, t.key, t.relpath) for t in shuffled.tasks}
    assert plan.tasks[0].seed == row_seed(7, "line-000") != row_seed(8, "line-000")
    assert len({t.seed for t in plan.tasks}) == 6
    t0 = plan.tasks[0]
    assert t0.relpath == f"line-000.{t0.key[:16]}.wav"
    edited = [dict(rows[0], text="Changed words."), *rows[1:]]
    again = plan_job(load_manifest(edited), tiny_models, spec=spec, job_seed=7)
    assert again.tasks[0].key != t0.key and again.tasks[1].key == plan.tasks[1].key
    pinned = plan_job(load_manifest([dict(rows[0], seed=5, out="ch1/open.mp3")]), tiny_models, spec=spec)
    assert pinned.tasks[0].seed == 5 and pinned.tasks[0].format == "mp3"
    assert pinned.tasks[0].relpath.startswith("ch1/open.") and pinned.tasks[0].relpath.endswith(".mp3")
    # the CPU thread count changes float sums, so it is part of the name
    assert plan_job(load_manifest(rows[:1]), tiny_models, spec=ModelSpec(models=spec.models, device="cpu",
                                                                        threads=2)).tasks[0].key != t0.key


# ---- rendering ---------------------------------------------------------------------------------------

def test_200_rows_render_labelled_resume_and_report(tmp_path: Path, spec: ModelSpec):
    rows = manifest_rows(200)
    rows[17]["settings"] = {**FAST, "min_eos_p": 1e-9}  # stops at once: an empty take, a real failure
    manifest = write_jsonl(tmp_path / "job.jsonl", rows)
    out = tmp_path / "out"
    seen = []
    s = render_job(manifest, out, spec=spec, batch_size=8, progress=lambda p: seen.append((p.done, p.failed)))
    assert (s.total, s.rendered, s.failed, s.skipped) == (200, 199, 1, 0)
    assert seen[-1] == (199, 1) and len(seen) == 200
    assert s.failures[0][0] == "line-017" and "min_eos_p" in s.failures[0][1]

    records = ResultsLog(out).records()
    assert len(records) == 200
    ok = [r for r in records if r["status"] == "ok"]
    (failed,) = [r for r in records if r["status"] == "failed"]
    assert failed["id"] == "line-017" and "stopped at once" in failed["error"] and "file" not in failed
    for rec in ok:
        path = out / rec["file"]
        assert path.name.startswith(rec["id"] + ".") and rec["key"][:16] in path.name
        label = read_label(path)
        assert label["AI_GENERATED"] is True and label["extra"]["render_key"] == rec["key"]
        assert label["extra"]["row_id"] == rec["id"] and label["seed"] == rec["seed"]
        assert "checked_at" not in label["qc"]
        assert rec["scores"]["duration_s"] == pytest.approx(rec["duration_s"], abs=0.01)
    assert all(detect(out / r["file"]).detected for r in ok[::20])

    html = (out / "report.html").read_text()
    assert html.count("<audio") == 199 and "line-017" in html and "stopped at once" in html
    csv_lines = (out / "report.csv").read_text().splitlines()
    assert len(csv_lines) == 201 and csv_lines[0].startswith("id,status")

    with pytest.raises(JobError, match="--resume"):
        render_job(manifest, out, spec=spec)
    rows[17]["settings"] = dict(FAST)  # fix the failing row, edit another: only those two render again
    rows[3]["text"] = "Line three, rewritten."
    write_jsonl(manifest, rows)
    again = render_job(manifest, out, spec=spec, resume=True, batch_size=8)
    assert (again.rendered, again.failed, again.skipped) == (2, 0, 198)
    assert len(ResultsLog(out).records()) == 202
    assert (out / "report.html").read_text().count("<audio") == 200


def test_a_file_written_before_a_kill_is_adopted_and_a_damaged_one_redone(tmp_path: Path, spec: ModelSpec):
    manifest = write_jsonl(tmp_path / "job.jsonl", manifest_rows(3))
    out = tmp_path / "out"
    render_job(manifest, out, spec=spec)
    log = out / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    last = json.loads(lines[-1])
    log.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # the kill: no full log line for the last file
    first = json.loads(lines[0])
    (out / first["file"]).write_bytes(b"RIFF" + b"\0" * 40)  # and a damaged file for the first
    s = render_job(manifest, out, spec=spec, resume=True)
    assert (s.recovered, s.rendered, s.skipped) == (1, 1, 2)
    reader = ResultsLog(out)
    records = reader.records()
    assert reader.damaged_lines == 1
    assert [r["id"] for r in records[-2:]] == [last["id"], first["id"]] and records[-2]["recovered"] is True
    assert detect(out / first["file"]).detected


def test_cli_reports_bad_rows_then_skip_invalid_renders_the_good_ones(tmp_path: Path, tiny_dir: Path, capsys):
    from bark_core.cli import main

    rows = manifest_rows(3)
    bad = [*rows, {"id": "x", "text": "", "voice": "v2/en_speaker_6"}, {"id": "y", "text": "hi", "voice": "nobody"}]
    manifest = write_jsonl(tmp_path / "job.jsonl", bad)
    out = tmp_path / "out"
    common = ("--models", str(tiny_dir), "--device", "cpu", "-q")
    assert main(["render", str(manifest), "-o", str(out), "--dry-run", *common]) == 2
    err = capsys.readouterr().err
    assert "line 4 (id 'x'): text is empty" in err and "line 5 (id 'y'): voice 'nobody'" in err
    assert not out.exists()
    assert main(["render", str(manifest), "-o", str(out), "--dry-run", "--skip-invalid", *common]) == 0
    plan = capsys.readouterr().out
    assert "rows: 3  to render: 3  already done: 0  invalid: 2" in plan
    assert "v2/en_speaker_6 x1" in plan and not out.exists()
    assert main(["render", str(manifest), "-o", str(out), "--skip-invalid", *common]) == 0
    done = capsys.readouterr().out
    assert "rendered 3, failed 0, skipped 0" in done and "2 invalid rows set aside" in done
    report = (out / "report.csv").read_text()
    assert "x (line 4),invalid" in report and "y (line 5),invalid" in report
    assert len(list(out.glob("line-*.wav"))) == 3
    assert main(["render", str(manifest), "-o", str(out), "--resume", "--dry-run", "--skip-invalid", *common]) == 0
    assert "to render: 0  already done: 3" in capsys.readouterr().out
    assert main(["render", str(manifest), "-o", str(tmp_path / "o2"), "--workers", "2", "--skip-invalid",
                 *common]) == 2
    assert "--ray local" in capsys.readouterr().err


def test_kill_mid_job_then_resume_renders_only_the_missing_rows(tmp_path: Path, tiny_dir: Path):
    n = 24
    manifest = write_jsonl(tmp_path / "job.jsonl", manifest_rows(n))
    out = tmp_path / "out"
    args = ("render", str(manifest), "-o", str(out), "--models", str(tiny_dir), "--device", "cpu", "-q")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "bark_core.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = ResultsLog(out)
    deadline = time.monotonic() + 300
    try:
        while len(log.records()) < 5 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = {r["id"] for r in log.records()}
    assert 5 <= len(before) < n
    assert not list(out.rglob("*.part"))  # atomic writes: no half file under any name
    res = cli(*args, "--resume")
    assert res.returncode == 0, res.stderr
    records = log.records()
    redone = [r["id"] for r in records[len(before):] if not r.get("recovered")]
    adopted = [r["id"] for r in records[len(before):] if r.get("recovered")]  # written, killed before its log line
    assert len(adopted) <= 1 and not set(adopted) & set(redone)
    assert sorted(redone + adopted) == sorted(r["id"] for r in manifest_rows(n) if r["id"] not in before)
    ok = {r["id"]: r for r in records if r["status"] == "ok"}
    assert len(ok) == n
    assert all(detect(out / r["file"]).detected for r in ok.values())
    assert f"rendered {len(redone)}, failed 0, skipped {n - len(redone)}" in res.stdout


def test_results_log_reads_past_a_cut_line_and_appends_on_a_new_one(tmp_path: Path):
    log = ResultsLog(tmp_path)
    log.append({"id": "a", "key": "k1", "status": "ok"})
    log.close()
    with open(log.path, "ab") as fh:
        fh.write(b'{"id": "b", "key": "k2", "sta')
    log2 = ResultsLog(tmp_path)
    log2.append({"id": "c", "key": "k3", "status": "failed", "error": "boom"})
    log2.close()
    assert [r["id"] for r in log2.records()] == ["a", "c"] and log2.damaged_lines == 1
    assert log2.latest_by("key")["k3"]["error"] == "boom"


def test_ray_backend_without_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     spec: ModelSpec):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    manifest = write_jsonl(tmp_path / "job.jsonl", manifest_rows(1))
    with pytest.raises(JobError, match=r"bark-stages\[ray\]"):
        render_job(manifest, tmp_path / "out", spec=spec, ray="local")


def test_stage_cache_serves_unchanged_stages_when_only_later_settings_change(tmp_path: Path, tiny_dir: Path):
    from bark_core.jobs import OutputOptions

    cache = tmp_path / "stages"
    spec = ModelSpec(models=str(tiny_dir), device="cpu", stage_cache=str(cache))
    rows = manifest_rows(2)
    manifest = write_jsonl(tmp_path / "job.jsonl", rows)
    entries = lambda: len(list(cache.glob("??/*.npz")))  # noqa: E731
    assert render_job(manifest, tmp_path / "a", spec=spec, batch_size=2).rendered == 2
    assert entries() == 8  # semantic, coarse, fine, decode per row
    # another format: new files (new names), every stage from the cache
    flac = render_job(manifest, tmp_path / "b", spec=spec, output=OutputOptions(format="flac"), batch_size=2)
    assert flac.rendered == 2 and entries() == 8 and len(list((tmp_path / "b").glob("*.flac"))) == 2
    # another fine temperature: semantic and coarse come from the cache, fine and decode run again
    write_jsonl(manifest, [dict(r, settings={**FAST, "fine_temp": 0.5}) for r in rows])
    assert render_job(manifest, tmp_path / "c", spec=spec, batch_size=2).rendered == 2
    assert entries() == 12


def test_render_benchmark_runs_and_reports_rows_per_minute(tmp_path: Path, capsys, load_benchmark):
    bench = load_benchmark("render")
    rows = bench.main(["--sizes", "tiny", "--rows", "3", "--seconds", "0.1", "--no-ray", "--weights",
                       str(tmp_path / "w"), "--out", str(tmp_path / "r.json")])
    (row,) = rows
    assert (row["backend"], row["rows"], row["failed"]) == ("local", 3, 0)
    assert row["audio_s"] == pytest.approx(0.3, abs=0.03) and row["rows_per_min"] > 0
    assert row["commit_ms_per_row"] > 0 and row["steady_rows_per_min"] > 0
    assert "| tiny | local | 1 | 3 |" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["info"]["seconds_per_row"] == 0.1


def test_a_job_in_another_precision_never_reuses_the_outputs_of_this_one(tiny_dir):
    """Output names hash the model identity: int8 and autocast takes differ from bf16/fp32 ones, so a re-run
    in another precision renders again instead of serving files made by other weights."""
    from bark_core.jobs.plan import model_identity

    seen = {}
    for dtype in ("fp32", "bf16", "autocast", "int8"):
        try:
            models = BarkModels(tiny_dir, device="cpu", dtype=dtype)
        except Exception as exc:  # noqa: BLE001 - a torch build without the int8 kernel
            pytest.skip(f"{dtype}: {exc}")
        seen[dtype] = json.dumps(model_identity(models, threads=1)["dtype"], sort_keys=True)
    assert len(set(seen.values())) == 4, seen
