"""Scripts and subtitles as render jobs: one row per spoken line, ids from line numbers, voices from the
script's speaker map (header, then a --voices file), errors with the script's line numbers, and the same
files whether the script is rendered directly or through the JSONL it converts to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bark_core.jobs import ManifestError, ModelSpec, ResultsLog, load_manifest, plan_job
from bark_core.label import detect, read_label

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT / "examples" / "scenes"
FAST = ("--set", "max_gen_duration_s=0.1", "--set", "fine_temp=null")

SCRIPT = """---
seed = 11
[voices]
Alice = "v2/en_speaker_9"
Bob = "v2/en_speaker_6"
---
Alice: Hello there. [pause 0.5s] Nice day.
[Bob] Indeed it is. [laughs]

[pause:800ms]
Alice: See you.
"""


def test_script_lines_become_rows_with_line_ids_and_the_speakers_voices(tmp_path: Path):
    path = tmp_path / "My Scene.txt"
    path.write_text(SCRIPT, encoding="utf-8")
    m = load_manifest(path)
    got = [(r.id, r.line, r.speaker, r.voice, r.text) for r in m.rows]
    assert got == [("My_Scene-0007", 7, "Alice", "v2/en_speaker_9", "Hello there. Nice day."),
                   ("My_Scene-0008", 8, "Bob", "v2/en_speaker_6", "Indeed it is. [laughs]"),
                   ("My_Scene-0011", 11, "Alice", "v2/en_speaker_9", "See you.")]
    assert m.seed == 11 and m.source == "My Scene.txt"
    assert len(m.notes) == 1 and m.notes[0].startswith("line 7: pause(s) of 0.5 s")

    over = tmp_path / "voices.toml"
    over.write_text('[voices]\nBob = "v2/de_speaker_3"\n', encoding="utf-8")
    m = load_manifest(path, voices=over)
    assert [r.voice for r in m.rows] == ["v2/en_speaker_9", "v2/de_speaker_3", "v2/en_speaker_9"]


def test_subtitle_cues_become_rows_named_by_their_timing_line(tmp_path: Path):
    m = load_manifest(SCENES / "cues.srt", voices=SCENES / "voices.toml")
    assert len(m.rows) == 10
    first = m.rows[0]
    assert (first.id, first.line, first.speaker, first.voice) == ("cues-0002", 2, "Narrator", "v2/en_speaker_1")
    assert len({r.id for r in m.rows}) == 10
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n00:00.500 --> 00:02.000\n<v Bob>Good morning.\n\n"
                   "00:02.500 --> 00:04.000\nAlice: Morning!\n", encoding="utf-8")
    m = load_manifest(vtt, voices=SCENES / "voices.toml")
    assert [(r.id, r.speaker, r.voice, r.text) for r in m.rows] == [
        ("talk-0003", "Bob", "v2/en_speaker_6", "Good morning."),
        ("talk-0006", "Alice", "v2/en_speaker_9", "Morning!")]


def test_unknown_speakers_are_listed_by_line_and_skip_invalid_keeps_the_rest(tmp_path: Path):
    path = tmp_path / "scene.txt"
    path.write_text("---\n[voices]\nAlice = \"v2/en_speaker_9\"\n---\nAlice: One.\nAlicia: Two.\nBob: Three.\n"
                    "Alice: Four.\n", encoding="utf-8")
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    msg = str(info.value)
    assert "line 6 (id 'scene-0006'): unknown speaker 'Alicia' (did you mean Alice?)" in msg
    assert "line 7 (id 'scene-0007'): unknown speaker 'Bob'" in msg
    assert [p.line for p in info.value.problems] == [6, 7]
    m = load_manifest(path, skip_invalid=True)
    assert [r.id for r in m.rows] == ["scene-0005", "scene-0008"] and [p.line for p in m.skipped] == [6, 7]


def test_script_errors_keep_their_line_numbers(tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("Alice: Hi [pause forever] there.\n", encoding="utf-8")
    with pytest.raises(ManifestError, match=r"bad\.txt, line 1: "):
        load_manifest(bad)
    cues = tmp_path / "cues.srt"
    cues.write_text("1\n00:00:05,000 --> 00:00:06,000\nLate.\n\n2\n00:00:01,000 --> 00:00:02,000\nEarly.\n",
                    encoding="utf-8")
    with pytest.raises(ManifestError, match=r"cues\.srt, line \d+: "):
        load_manifest(cues)
    with pytest.raises(ManifestError, match=r"no voice map, and the speakers Narrator, Alice, Bob need voices"):
        load_manifest(SCENES / "cues.srt")
    rows = tmp_path / "job.jsonl"
    rows.write_text('{"id": "a", "text": "hi"}\n', encoding="utf-8")
    with pytest.raises(ManifestError, match="voice map applies to script"):
        load_manifest(rows, voices=SCENES / "voices.toml")


def test_a_rights_record_in_the_voice_map_reaches_the_planned_voice(tmp_path: Path, tiny_models, tiny_dir: Path):
    path = tmp_path / "scene.txt"
    path.write_text("---\n[voices]\nAda = { voice = \"v2/en_speaker_3\", rights = { who = \"Ada Example\", "
                    "right = \"written consent\", when = \"2026-11-01\" } }\n---\nAda: Hello.\n", encoding="utf-8")
    m = load_manifest(path)
    plan = plan_job(m, tiny_models, spec=ModelSpec(models=str(tiny_dir), device="cpu"))
    voice = plan.voices[plan.tasks[0].voice]
    assert voice.source["rights"]["who"] == "Ada Example"
    assert "rights" not in tiny_models.voice("v2/en_speaker_3").source  # the shared preset is left as it was


def test_cli_renders_an_srt_as_rows_and_its_written_manifest_gives_the_same_files(tmp_path: Path, tiny_dir: Path,
                                                                                 capsys):
    from bark_core.cli import main

    common = ("--models", str(tiny_dir), "--device", "cpu", "-q", *FAST)
    cues = str(shutil.copy(SCENES / "cues.srt", tmp_path / "cues.srt"))
    voices = str(SCENES / "voices.toml")
    out = tmp_path / "direct"
    assert main(["render", cues, "--voices", voices, "-o", str(out), *common]) == 0
    assert "rendered 10, failed 0, skipped 0" in capsys.readouterr().out
    records = {r["id"]: r for r in ResultsLog(out).records()}
    assert sorted(records) == sorted(f"cues-{n:04d}" for n in range(2, 40, 4))
    first = out / records["cues-0006"]["file"]
    assert detect(first).detected
    label = read_label(first)
    assert label["extra"]["speaker"] == "Alice" and label["extra"]["row_id"] == "cues-0006"
    assert label["stages"]["semantic"]["voice"] == "v2/en_speaker_9"

    jsonl = tmp_path / "cues.jsonl"
    assert main(["render", cues, "--voices", voices, "--write-manifest", str(jsonl)]) == 0
    assert "wrote 10 rows" in capsys.readouterr().out
    rows = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert rows[1] == {"id": "cues-0006", "text": "Is this the train to the city?", "voice": "v2/en_speaker_9",
                       "speaker": "Alice"}
    assert main(["render", str(jsonl), "-o", str(tmp_path / "via"), "--dry-run", *common]) == 0
    assert "rows: 10  to render: 10" in capsys.readouterr().out
    # the same rows planned from the JSONL land on the same content-addressed names: nothing left to render
    assert main(["render", str(jsonl), "-o", str(out), "--resume", "--dry-run", *common]) == 0
    assert "to render: 0  already done: 10" in capsys.readouterr().out


def test_npz_voices_are_read_from_the_folder_of_the_file_that_names_them(tmp_path: Path, tiny_models,
                                                                          tiny_dir: Path, monkeypatch):
    sub, maps = tmp_path / "scenes", tmp_path / "maps"
    sub.mkdir()
    maps.mkdir()
    tiny_models.voice("v2/en_speaker_3").save(sub / "ada.npz")
    tiny_models.voice("v2/en_speaker_1").save(maps / "bo.npz")
    (sub / "scene.txt").write_text('---\n[voices]\nAda = "ada.npz"\n---\nAda: Hello.\nBo: Hi.\n', encoding="utf-8")
    (maps / "v.toml").write_text('[voices]\nBo = "bo.npz"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # relative paths all the way: the header's from scenes/, the map's from maps/
    m = load_manifest(Path("scenes/scene.txt"), voices=Path("maps/v.toml"))
    plan = plan_job(m, tiny_models, spec=ModelSpec(models=str(tiny_dir), device="cpu"))
    assert [plan.voices[t.voice].id for t in plan.tasks] == [tiny_models.voice(str(sub / "ada.npz")).id,
                                                               tiny_models.voice(str(maps / "bo.npz")).id]
