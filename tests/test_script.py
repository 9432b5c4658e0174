"""Scripts and subtitles in, placements and SRT out: every tag and error path with its line number (no models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bark_core.script import (
    LINE_GAP_S,
    MAX_COMPRESSION,
    PARAGRAPH_PAUSE_S,
    ScriptError,
    VoiceMap,
    compose_srt,
    parse_script,
    place,
    read_script,
    trim_silence,
)
from bark_core.script.timeline import placed_cues

SR = 24_000
SCENE = """---
title = "Station"
seed = 7

[voices]
Alice = "v2/en_speaker_9"
Bob = "v2/en_speaker_6"
---
# a comment
Alice: Is this the train? [pause 0.8s] I have never taken it.
[Bob] Yes. [laughs] It leaves soon — ♪ la la ♪
and it is always on time.

Alice: Thank you.
[pause:1200ms]
Bob: Bye [pause 2 s] for now [pause: 1.5s]
"""


def test_script_format_tags_and_line_numbers():
    sc = parse_script(SCENE)
    assert sc.header["seed"] == 7 and sc.header["voices"]["Bob"] == "v2/en_speaker_6"
    assert [ln.speaker for ln in sc.lines] == ["Alice", "Bob", "Bob", "Alice", None, "Bob"]
    assert [ln.lineno for ln in sc.lines] == [10, 11, 12, 14, 15, 16]
    a = sc.lines[0]
    assert [(s.text, s.pause_s) for s in a.segments] == [("Is this the train?", 0.0), ("", 0.8),
                                                         ("I have never taken it.", 0.0)]
    assert a.text == "Is this the train? I have never taken it."
    assert sc.lines[1].text == "Yes. [laughs] It leaves soon — ♪ la la ♪"  # Bark's cues pass through
    assert sc.lines[2].speaker == "Bob" and not sc.lines[2].paragraph  # a continuation line keeps the speaker
    assert sc.lines[3].paragraph  # a blank line before it
    assert sc.lines[4].is_pause and sc.lines[4].segments[0].pause_s == pytest.approx(1.2)
    assert [s.pause_s for s in sc.lines[5].segments] == [0.0, 2.0, 0.0, 1.5]
    assert sc.speakers == ["Alice", "Bob"] and len(sc.spoken) == 5
    keys = [ln.key for ln in sc.lines]
    assert len(set(keys)) == len(keys)
    edited = parse_script(SCENE.replace("Thank you.", "Thanks a lot."))
    assert [ln.key for ln in edited.lines][:3] == keys[:3]  # editing one line keeps the other lines' seeds


def test_bark_cue_at_line_start_is_not_a_speaker():
    sc = parse_script("Ann: Hi.\n[laughs] That was funny.\n[sighs] Oh well.")
    assert [ln.speaker for ln in sc.lines] == ["Ann", "Ann", "Ann"]
    assert sc.lines[1].text == "[laughs] That was funny."


@pytest.mark.parametrize("text, lineno, words", [
    ("Ann: Hi [pause abc] there", 1, "malformed pause tag"),
    ("Ann: Hi\nBob: [pause -1s] x", 2, "malformed pause tag"),
    ("Ann: Hi\n\nAnn: wait [pause 900s]", 3, "outside 0..30 s"),
    ("Ann: Hi [pause 1s there", 1, "not closed"),
    ("Ann: Hi [laughs there", 1, "unbalanced brackets"),
    ("Hello there.\nAnn: Hi", 1, "no speaker"),
    ("Ann: ok\n---\nBob: x", 2, "header is only allowed at the top"),
    ("---\nseed = 7\nAnn: hi", 1, "never closed"),
    ("---\nseed = 7\nvoices = what\n---\nAnn: hi", 3, "not valid TOML"),
    ("# only a comment\n[pause 1s]", None, "no spoken line"),
])
def test_script_errors_name_the_line(text, lineno, words):
    with pytest.raises(ScriptError) as err:
        parse_script(text, source="scene.txt")
    assert err.value.lineno == lineno and words in str(err.value)
    if lineno is not None:
        assert f"scene.txt, line {lineno}:" in str(err.value)


def test_unknown_speaker_is_an_error_at_its_first_line(tmp_path):
    sc = parse_script("---\n[voices]\nAlice = \"v2/en_speaker_9\"\n---\nAlice: Hi.\nAlicia: Hello?\nBob: Hey.")
    with pytest.raises(ScriptError) as err:
        VoiceMap.from_mapping(sc.header["voices"]).check(sc)
    assert err.value.lineno == 6 and "unknown speaker 'Alicia'" in str(err.value)
    assert "Did you mean Alice" in str(err.value) and "[voices]" in str(err.value)
    VoiceMap.from_mapping({"Alice": "v2/en_speaker_9", "*": "v2/en_speaker_1"}).check(sc)  # "*" catches the rest


def test_voice_map_files_relative_paths_and_rights(tmp_path):
    (tmp_path / "v.json").write_text(json.dumps({"voices": {"Ann": "ann.npz", "Ben": "none"}}))
    vm = VoiceMap.from_file(tmp_path / "v.json")
    assert vm.entry("Ann").spec == str(tmp_path / "ann.npz") and vm.entry("Ben").spec is None
    (tmp_path / "v.toml").write_text('[voices]\nAnn = { voice = "clone.npz", rights = { who = "Ann Example", '
                                     'right = "written consent", when = "2026-11-01" } }\n')
    entry = VoiceMap.from_file(tmp_path / "v.toml").entry("Ann")
    assert entry.rights.who == "Ann Example" and entry.spec.endswith("clone.npz")
    (tmp_path / "bad.toml").write_text('[voices]\nAnn = { voice = "clone.npz", rights = { who = "Ann" } }\n')
    with pytest.raises(ScriptError, match="rights record of 'Ann' is incomplete"):
        VoiceMap.from_file(tmp_path / "bad.toml")
    (tmp_path / "broken.json").write_text('{"Ann": "x",\n "Ben": }')
    with pytest.raises(ScriptError) as err:
        VoiceMap.from_file(tmp_path / "broken.json")
    assert err.value.lineno == 2


SRT = """1
00:00:00,500 --> 00:00:02,000
Alice: Hello there.

2
00:00:02,500 --> 00:00:04,000
[Bob] Hi! [pause 0.3s] How are you?

3
00:00:04,500 --> 00:00:06,250
I am fine.
"""


def test_srt_and_vtt_cues_become_timed_lines(tmp_path):
    (tmp_path / "a.srt").write_text(SRT)
    sc = read_script(tmp_path / "a.srt")
    assert sc.kind == "srt" and sc.timed and sc.source == "a.srt"
    assert [(ln.speaker, ln.start_s, ln.end_s, ln.lineno) for ln in sc.lines] == [
        ("Alice", 0.5, 2.0, 2), ("Bob", 2.5, 4.0, 6), ("Bob", 4.5, 6.25, 10)]
    assert sc.lines[1].segments[1].pause_s == pytest.approx(0.3)
    vtt = ("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n<v Alice>Hello there\n\n"
           "00:00:03.000 --> 00:01:04.250\nBob: Hi\n")
    sv = read_script(vtt)
    assert sv.kind == "vtt" and [(ln.speaker, ln.start_s, ln.end_s, ln.lineno) for ln in sv.lines] == [
        ("Alice", 1.0, 2.5, 3), ("Bob", 3.0, 64.25, 6)]


@pytest.mark.parametrize("bad, lineno, words", [
    (SRT.replace("00:00:02,500 --> 00:00:04,000", "00:00:01,500 --> 00:00:04,000"), 6, "must not overlap"),
    (SRT.replace("00:00:04,500 --> 00:00:06,250", "00:00:06,500 --> 00:00:04,250"), 10, "ends"),
])
def test_overlapping_or_reversed_cues_are_errors_with_line_numbers(bad, lineno, words):
    with pytest.raises(ScriptError) as err:
        read_script(bad, kind="srt")
    assert err.value.lineno == lineno and words in str(err.value) and "cue" in str(err.value)


def test_malformed_subtitles_are_errors():
    with pytest.raises(ScriptError, match="not a valid SubRip"):
        read_script("1\n00:00:01,000 --> garbage\nHi\n", kind="srt")
    with pytest.raises(ScriptError, match="not a valid WebVTT"):
        read_script("no header\n\n00:00:01.000 --> 00:00:02.000\nHi\n", kind="vtt")


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_cues_are_placed_at_their_times_and_the_srt_round_trips():
    sc = read_script(SRT, kind="srt")
    takes = {ln.number: _tone(1.0) for ln in sc.lines}
    track, placements = place(sc.lines, takes, SR, timed=True)
    for ln, p in zip(sc.lines, placements, strict=True):
        assert abs(p.start_s - ln.start_s) <= 0.010 and not p.flags
        onset = np.flatnonzero(np.abs(track) > 1e-3)
        first_after = onset[onset >= int((ln.start_s - 0.2) * SR)][0] / SR
        assert abs(first_after - ln.start_s) <= 0.010  # the sound itself starts on the cue
    assert len(track) == int(6.25 * SR)
    text = compose_srt(placed_cues(placements))
    again = read_script(text, kind="srt")
    assert [(ln.speaker, ln.text) for ln in again.lines] == [(ln.speaker, ln.text) for ln in sc.lines]
    assert [ln.start_s for ln in again.lines] == pytest.approx([p.start_s for p in placements], abs=0.001)
    assert [ln.end_s for ln in again.lines] == pytest.approx([p.end_s for p in placements], abs=0.001)


def test_overrunning_takes_are_compressed_then_flagged_and_the_next_cue_waits():
    sc = read_script(SRT, kind="srt")
    takes = {1: _tone(1.6), 2: _tone(2.5), 3: _tone(0.5)}  # cue 1 lasts 1.5 s, cue 2 1.5 s
    track, (p1, p2, p3) = place(sc.lines, takes, SR, timed=True)
    assert p1.tempo == pytest.approx(1.6 / 1.5, rel=1e-3) and p1.end_s - p1.start_s == pytest.approx(1.5, abs=0.02)
    assert not any(f.startswith("overflow") for f in p1.flags)
    assert p2.tempo == pytest.approx(1 / (1 - MAX_COMPRESSION), rel=1e-3)  # the limit, no further
    assert any(f.startswith("overflow") for f in p2.flags)
    assert p3.start_s == pytest.approx(p2.end_s) and any(f.startswith("late") for f in p3.flags)


def test_script_lines_follow_each_other_with_exact_pauses():
    sc = parse_script("A: one\nB: two\n\nA: three\n[pause 1.25s]\nB: four")
    takes = {ln.number: _tone(0.5) for ln in sc.spoken}
    track, ps = place(sc.lines, takes, SR, timed=False)
    starts = [p.start_s for p in ps]
    assert starts == pytest.approx([0.0, 0.5 + LINE_GAP_S, 1.0 + LINE_GAP_S + PARAGRAPH_PAUSE_S,
                                    1.5 + LINE_GAP_S + PARAGRAPH_PAUSE_S + 1.25], abs=1 / SR)
    gap = track[int((ps[2].end_s + 0.01) * SR):int((ps[3].start_s - 0.01) * SR)]
    assert gap.size and not np.any(gap)  # the pause is digital silence


def test_trim_silence_keeps_a_short_margin():
    x = np.concatenate([np.zeros(SR), _tone(0.5), np.zeros(SR)])
    y = trim_silence(x, SR)
    assert abs(len(y) / SR - 0.54) < 0.005


def test_text_from_users_is_never_taken_for_a_path(tmp_path):
    from bark_core.script import parse_text

    secret = tmp_path / "secret.txt"
    secret.write_text("Ann: private words.")
    assert read_script(str(secret)).lines[0].text == "private words."  # the file API opens files
    with pytest.raises(ScriptError, match="no speaker"):
        parse_text(str(secret))  # front ends pass typed text: it stays text
