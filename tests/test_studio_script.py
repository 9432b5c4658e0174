"""The studio's script panel on the tiny set: render a two-speaker script and a 10-cue SRT, then listen, accept
and retake one line from the per-line table."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ipywidgets", minversion="8")

from bark_core import StageCache  # noqa: E402
from bark_core.label import read_label  # noqa: E402
from bark_core.script import read_script  # noqa: E402
from bark_studio import Studio  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scenes"


@pytest.fixture()
def studio(tiny_dir, tmp_path):
    # the default disk stage cache: takes the CLI and node tests made with the same settings come back as hits
    s = Studio(models=tiny_dir, background=False, cache=StageCache(), review_store=tmp_path / "reviews",
               output_dir=tmp_path / "out", device="cpu", reviewer="Sam")
    yield s
    s.close()


def test_script_panel_renders_reviews_and_retakes_one_line(studio, tmp_path):
    panel = studio.script_panel
    panel.script.value = (EXAMPLES / "scene.txt").read_text()
    panel.voices.value = (EXAMPLES / "voices.toml").read_text()
    panel.seed.value, panel.tries.value, panel.max_duration.value = 7, 1, 0.2
    panel.run_button.click()
    assert "lines passed" in panel.status.value, panel.status.value
    assert sorted(panel.rows) == [1, 2, 3, 5] and len(panel.table.children) == 4
    row = panel.rows[2]
    assert row.player.value[:4] == b"RIFF" and "Bob" in row.info.value and "tries 1" in row.info.value
    assert panel.scene_player.value[:4] == b"RIFF"
    assert [ln.speaker for ln in read_script(panel.srt.value, kind="srt").lines] == ["Alice", "Bob", "Alice", "Bob"]

    assert row.box.comm is not None
    row.accept_button.click()
    assert studio.script.rows()[1]["review"] == "approved" and "review <b>approved</b>" in panel.rows[2].info.value
    # the redraw closed the rows it replaced (a kernel keeps every unclosed widget)
    assert row.box.comm is None and row.player.comm is None and row.accept_button.comm is None
    assert panel.rows[2].box.comm is not None
    old_seeds = studio.script.production.results[3].seeds
    panel.rows[3].retake_button.click()
    result = studio.script.production.results[3]
    assert result.seeds[:1] == old_seeds and len(result.seeds) == 2 and result.chosen == 1
    assert "tries 2" in panel.rows[3].info.value
    paths = studio.script.save(tmp_path / "scene")
    assert read_label(paths["audio"])["qc"]["retakes"][2]["tries"] == 2


def test_script_panel_places_a_ten_cue_srt(studio):
    desk = studio.script
    desk.load(EXAMPLES / "cues.srt")
    desk.set(voices=(EXAMPLES / "voices.toml").read_text(), tries=1, max_duration_s=0.2, seed=7,
             check_script=False, check_speaker=False)  # placement is the point here; the test above runs all checks
    studio.script_panel.script.value = desk.settings["script"]
    studio.script_panel.voices.value = desk.settings["voices"]
    studio.script_panel.max_duration.value, studio.script_panel.tries.value = 0.2, 1
    studio.script_panel.run_button.click()
    assert len(studio.script_panel.rows) == 10
    cues, placed = read_script(EXAMPLES / "cues.srt"), read_script(studio.script_panel.srt.value, kind="srt")
    assert all(abs(a.start_s - b.start_s) <= 0.010 for a, b in zip(cues.lines, placed.lines, strict=True))


def test_script_panel_shows_errors_with_line_numbers(studio):
    panel = studio.script_panel
    panel.script.value = "Alice: Hi.\nCarol: Hello."
    panel.voices.value = 'Alice = "v2/en_speaker_9"'
    panel.run_button.click()
    assert "line 2: unknown speaker" in panel.status.value and not panel.rows
