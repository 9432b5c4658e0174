"""The retake loop and whole scenes on the tiny model set: seeds tried and recorded, reproducible candidates,
the long-form chunk scorer, and the ``bark-core script`` command end to end with labelled output and a report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bark_core import Audio, generate_long
from bark_core.cli import main as cli_main
from bark_core.label import read_label
from bark_core.script import (
    RetakePolicy,
    Scores,
    chunk_scorer,
    line_seed,
    parse_script,
    read_script,
    render_line,
    render_script,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenes"
FAST = dict(allow_early_stop=False, max_gen_duration_s=0.2)
SHORT = dict(max_gen_duration_s=0.2)  # the CLI's --max-duration 0.2: these takes are shared through the disk cache


@pytest.fixture()
def cached_models(tiny_dir):
    from bark_core import BarkModels, StageCache

    return BarkModels(tiny_dir, device="cpu", cache=StageCache())


class RejectFirst:
    """A scorer that fails the first ``k`` candidates it sees and passes the rest; it records what it saw."""

    def __init__(self, k: int):
        self.k, self.seen = k, []

    def __call__(self, audio, text, memory, cue_s) -> Scores:
        self.seen.append(audio.provenance.seed)
        ok = len(self.seen) > self.k
        return Scores(duration_s=audio.duration_s, wer=0.0 if ok else 1.0, checks={"on_script": ok},
                      reasons=[] if ok else ["stub: rejected"])


@pytest.mark.parametrize("k, text", [(0, "Ann: Hello there. [pause 0.3s] Bye."), (2, "Ann: Hello there.")])
def test_retake_loop_tries_exactly_k_plus_one_seeds_and_records_them(tiny_models, k, text):
    line = parse_script(text).lines[0]
    scorer = RejectFirst(k)
    result = render_line(tiny_models, line, "v2/en_speaker_1", seed=11, policy=RetakePolicy(max_tries=5),
                         scorer=scorer, **FAST)
    want = [line_seed(11, line, i) for i in range(k + 1)]
    assert scorer.seen == want and result.seeds == want and len(set(want)) == k + 1
    assert result.chosen == k and result.passed and result.verdict.startswith("passed")
    recorded = result.take.provenance.settings
    assert [c["seed"] for c in recorded["candidates"]] == want and recorded["chosen_attempt"] == k + 1
    assert [c["passed"] for c in recorded["candidates"]] == [False] * k + [True]
    assert result.take.provenance.stage == "retake" and result.take.parent is result.best.audio
    if k == 0:  # two spoken parts around exactly 0.3 s of digital silence
        assert (result.best.audio.samples == 0).sum() >= int(0.3 * 24000) and len(result.best.takes) == 2


def test_no_passing_candidate_keeps_the_lowest_penalty_and_a_rerun_repeats(cached_models):
    line = parse_script("Ann: Hello.").lines[0]

    def scorer(audio, text, memory, cue_s):
        wer = {0: 0.9, 1: 0.4, 2: 0.7}[len(seen)]
        seen.append(audio)
        return Scores(wer=wer, checks={"on_script": False}, reasons=[f"WER {wer}"])

    seen: list[Audio] = []
    first = render_line(cached_models, line, None, seed=3, policy=RetakePolicy(max_tries=3), scorer=scorer, **FAST)
    assert len(first.candidates) == 3 and first.chosen == 1 and not first.passed
    assert first.verdict == "kept best, WER 0.4"
    seen.clear()
    again = render_line(cached_models, line, None, seed=3, policy=RetakePolicy(max_tries=3), scorer=scorer, **FAST)
    assert [c.audio.id for c in again.candidates] == [c.audio.id for c in first.candidates]
    assert all(t.audio.cache_hit for c in again.candidates for t in c.takes)  # a re-run finds every take made


def test_long_form_chunks_are_scored_retaken_and_report_drift(cached_models):
    policy = RetakePolicy(max_tries=2, check_script=False, check_quality=False)
    long = generate_long(cached_models, "First one. Second one.", "v2/en_speaker_6", seed=5, max_chars=12,
                         scorer=chunk_scorer(policy), max_tries=2, **FAST)
    assert len(long.takes) == len(long.scores) == len(long.tries) == 2
    assert long.drift()[0] is None and isinstance(long.drift()[1], float)
    assert 1 <= long.tries[1] <= 2 and len(long.scores[1]["candidates"]) == long.tries[1]
    assert long.seeds[1] == long.scores[1]["seed"]
    report = long.drift_report().splitlines()
    assert report[0].split() == ["chunk", "tries", "WER", "sim", "drift", "verdict"] and len(report) == 4
    assert report[2].split()[:2] == ["2", str(long.tries[1])] and report[2].split()[4] == f"{long.drift()[1]:.2f}"
    assert report[3].startswith("largest drift")
    plain = generate_long(cached_models, "First one. Second one.", "v2/en_speaker_6", seed=5, max_chars=12, **FAST)
    assert plain.seeds[0] == long.seeds[0] and plain.scores == []  # without a scorer nothing changes


def test_unknown_speaker_stops_before_any_generation(tiny_models):
    sc = parse_script("---\n[voices]\nAnn = \"v2/en_speaker_1\"\n---\nAnn: Hi.\nBen: Hello.")
    from bark_core.script import ScriptError

    with pytest.raises(ScriptError, match="line 6: unknown speaker 'Ben'"):
        render_script(tiny_models, sc, **FAST)


def test_production_report_label_and_reviewable_takes(cached_models, tmp_path):
    from bark_core.label import approve, review_state

    sc = read_script(EXAMPLES / "scene.txt")
    prod = render_script(cached_models, sc, policy=RetakePolicy(max_tries=1), **SHORT)
    assert prod.seed == 7 and [r["speaker"] for r in prod.rows()] == ["Alice", "Bob", "Alice", "Bob"]
    paths = prod.save(tmp_path / "out")
    lab = read_label(paths["audio"])
    assert lab["AI_GENERATED"] and lab["seed"] == 7
    assert [r["line"] for r in lab["qc"]["retakes"]] == [1, 2, 3, 5] and lab["qc"]["asr"]
    line_lab = read_label(paths["line2"])
    assert line_lab["qc"]["candidates"][0]["seed"] == prod.results[2].seeds[0]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["untrained_models"] and len(report["lines"]) == 4 and report["engines"]["speaker"]
    take = prod.results[2].take
    approve(take, reviewer="Sam", note="fine", store=tmp_path / "reviews")
    assert review_state(take, store=tmp_path / "reviews").state == "approved"


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg (Debian package) not installed")
def test_cli_renders_a_two_speaker_script_and_a_ten_cue_srt(tiny_dir, tmp_path, capsys):
    common = ["--models", str(tiny_dir), "--device", "cpu", "--tries", "1", "--max-duration", "0.2", "-q",
              "--seed", "7", "--voices", str(EXAMPLES / "voices.toml"), "--srt"]
    status = cli_main(["script", str(EXAMPLES / "scene.txt"), "-o", str(tmp_path / "scene"), *common])
    out = capsys.readouterr().out
    assert status == 1  # untrained noise fails the checks: the command says so in its exit status
    assert "line  speaker" in out and "Alice" in out and "0/4 lines passed" in out
    assert read_label(tmp_path / "scene" / "scene.wav")["AI_GENERATED"]

    # placement is the point of the SRT run: the quality check alone keeps it quick (the scene ran every check)
    quick = [*common, "--no-asr", "--no-speaker"]
    status = cli_main(["script", str(EXAMPLES / "cues.srt"), "-o", str(tmp_path / "cues"), *quick])
    out = capsys.readouterr().out
    passed = int(out.split("/10 lines passed")[0].rsplit("\n", 1)[-1])
    assert status == (0 if passed == 10 else 1)  # the exit status follows the table
    cues = read_script(EXAMPLES / "cues.srt")
    placed = read_script(tmp_path / "cues" / "scene.srt")
    assert len(placed.lines) == 10
    for cue, got in zip(cues.lines, placed.lines, strict=True):
        assert abs(got.start_s - cue.start_s) <= 0.010 and got.speaker == cue.speaker and got.text == cue.text
    report = json.loads((tmp_path / "cues" / "report.json").read_text())
    assert report["kind"] == "srt" and len(report["lines"]) == 10 and report["seed"] == 7
    assert report["lines_passed"] == passed and report["engines"]["asr"] == "off"
    assert len(list((tmp_path / "cues" / "lines").glob("*.wav"))) == 10
    assert cli_main(["script", str(EXAMPLES / "cues.srt"), "-o", str(tmp_path / "cues"), *quick]) == 2
    assert "already exists" in capsys.readouterr().err


def test_say_long_with_tries_scores_every_chunk_and_prints_the_drift(tiny_dir, tmp_path, capsys):
    from bark_core.cli import say_main

    out = tmp_path / "long.wav"
    args = ["First one here. Second one now.", "--long", "--models", str(tiny_dir), "--device", "cpu", "-q",
            "--max-duration", "0.2", "--seed", "3", "-o", str(out)]
    assert say_main([*args, "--tries", "2", "--asr", "pocketsphinx"]) == 0
    printed = capsys.readouterr().out.splitlines()
    head = printed.index("chunk  tries  WER    sim    drift  verdict")
    first = printed[head + 1].split()
    assert first[:2] == ["1", "2"] and first[5] == "fail:"  # untrained noise never passes: both tries made
    assert read_label(out)["AI_GENERATED"]
    assert say_main(["Hi.", "--tries", "2", "--models", str(tiny_dir), "-o", str(tmp_path / "x.wav")]) == 2
    assert "add --long" in capsys.readouterr().err


def test_header_npz_voices_are_read_from_the_scripts_folder(cached_models, tmp_path, monkeypatch):
    sub = tmp_path / "scenes"
    sub.mkdir()
    cached_models.voice("v2/en_speaker_3").save(sub / "ada.npz")
    (sub / "scene.txt").write_text('---\n[voices]\nAda = "ada.npz"\n---\nAda: Hello.\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # not the script's folder
    script = read_script(Path("scenes/scene.txt"))
    assert script.folder == "scenes"
    prod = render_script(cached_models, script, seed=1, policy=RetakePolicy(max_tries=1, check_script=False,
                                                                              check_speaker=False), **SHORT)
    assert prod.voices.entry("Ada").spec == str(Path("scenes") / "ada.npz") and len(prod.rows()) == 1
