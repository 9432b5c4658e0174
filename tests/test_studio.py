"""The Jupyter studio driven from Python the way a user drives it: values set, buttons clicked, panels read.

Tiny untrained models on the CPU; every clip is cut to about a second (``max_gen_duration_s=1``) so
the whole file stays well under a minute on two cores. Runs are synchronous (``background=False``)
except where the background thread itself is under test.
"""

from __future__ import annotations

import importlib.util
import io
import threading
import wave
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets", minversion="8")

from bark_core import BadTextError, BarkModels, generate, load_artifact, load_voice  # noqa: E402
from bark_core.cache import StageCache  # noqa: E402
from bark_studio import Session, Studio, StudioError  # noqa: E402
from bark_studio.session import STAGES  # noqa: E402

TEXT = "Hello studio."
VOICE = "v2/en_speaker_6"  # the one preset the tiny set ships


@pytest.fixture()
def studio_take_s() -> float:
    """Seconds of audio per studio take; a test module may override it (tests/test_studio_state.py does)."""
    return 1


@pytest.fixture()
def make_studio(tiny_dir: Path, tmp_path: Path, studio_take_s: float):
    made: list[Studio] = []

    def make(**kw) -> Studio:
        models = kw.pop("models", tiny_dir)
        opts = dict(background=False, cache=StageCache(tmp_path / "stage-cache"), review_store=tmp_path / "reviews",
                    output_dir=tmp_path / "out", text=TEXT, voice=VOICE, seed=1, max_gen_duration_s=studio_take_s,
                    device="cpu")
        opts.update(kw)
        studio = Studio(models=models, **opts)
        made.append(studio)
        return studio

    yield make
    for studio in made:
        studio.wait(30)
        studio.close()


def _is_png(blob: bytes) -> bool:
    return blob[:8] == b"\x89PNG\r\n\x1a\n"


def _is_wav(blob: bytes) -> bool:
    return blob[:4] == b"RIFF" and blob[8:12] == b"WAVE"


def _badge(studio: Studio, stage: str) -> str:
    return studio.panels[stage].badge.value


def _all_html(studio: Studio) -> str:
    """Every HTML text the studio shows, to check that no traceback ever reaches the user."""
    out, todo = [], [studio]
    while todo:
        w = todo.pop()
        if hasattr(w, "children"):
            todo.extend(w.children)
        if type(w).__name__ == "HTML":
            out.append(w.value)
    return "\n".join(out)


def _upload(name: str, blob: bytes) -> tuple[dict, ...]:
    return ({"name": name, "type": "", "size": len(blob), "content": memoryview(blob),
             "last_modified": datetime.now(timezone.utc)},)


def _wav_bytes(seconds: float = 1.5, rate: int = 16_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------


def test_studio_renders_and_run_all_fills_every_panel(make_studio, tmp_path):
    studio = make_studio()
    placeholders = {s: p.image.value for s, p in studio.panels.items()}
    assert set(studio.run_buttons) == set(STAGES)
    assert all(_is_png(v) for v in placeholders.values())
    assert all(studio.state(s) == "empty" and "not run yet" in _badge(studio, s) for s in STAGES)
    assert "UNTRAINED" in studio.title.value
    assert studio.cancel_button.disabled and not studio.run_all_button.disabled

    studio.run_all_button.click()

    assert "Done" in studio.status.value, studio.status.value
    assert all(studio.state(s) == "fresh" and "up to date" in _badge(studio, s) for s in STAGES)
    for stage in ("semantic", "coarse", "fine", "decode"):
        img = studio.panels[stage].image.value
        assert _is_png(img) and img != placeholders[stage]
        assert studio.panels[stage].progress.value == 100
    assert "tokens" in studio.panels["semantic"].info.value
    assert "2 codebooks" in studio.panels["coarse"].info.value
    assert "8 codebooks" in studio.panels["fine"].info.value
    assert "watermark added" in studio.panels["label"].info.value
    players = {name: p for panel in studio.panels.values() for name, p in panel.players.items()}
    assert set(players) == {"preview", "decode", "label"}
    assert all(_is_wav(p.value) for p in players.values())
    assert players["decode"].value != players["label"].value  # the label stage records more (review, key)
    from bark_core.label import detect, read_label

    for name, player in players.items():  # a browser lets anyone download what it plays: all of it is labelled
        (tmp_path / f"{name}.wav").write_bytes(player.value)
        assert detect(tmp_path / f"{name}.wav").detected, name
        assert read_label(tmp_path / f"{name}.wav")["AI_GENERATED"] is True, name
    take = studio.takes[-1]
    assert take.number == 1 and take.stages == list(STAGES)
    assert take.preview is not None and take.preview.provenance.stage == "coarse_preview"
    assert "untrained_models" in studio.quality.value and "FAILED" in studio.quality.value
    assert studio.history.options[0][1] == 1 and "unreviewed" in studio.history.options[0][0]
    assert "5 misses" in studio.cache_info.value and "coarse_preview 0/1" in studio.cache_info.value
    assert studio.cancel_button.disabled and not any(b.disabled for b in studio.run_buttons.values())


def test_change_marks_stage_and_downstream_stale_and_rerun_comes_from_cache(make_studio):
    studio = make_studio()
    studio.run_all_button.click()
    first = studio.takes[-1]

    studio.controls["coarse_temp"].value = 0.9
    assert studio.settings["coarse_temp"] == 0.9
    assert studio.state("semantic") == "fresh"
    for stage in ("coarse", "fine", "decode", "label"):
        assert studio.state(stage) == "stale"
        assert "STALE" in _badge(studio, stage)
        assert "bark-stale" in studio.panels[stage].box._dom_classes
        assert "dashed" in studio.panels[stage].box.layout.border
    assert "bark-stale" not in studio.panels["semantic"].box._dom_classes

    studio.run_buttons["fine"].click()  # coarse is stale: it runs first, semantic is kept
    assert [studio.state(s) for s in STAGES] == ["fresh", "fresh", "fresh", "stale", "stale"]
    assert not studio.results["coarse"].cache_hit and "computed" in studio.panels["coarse"].info.value
    second = studio.takes[-1]
    assert second.number == 2 and second.stages == ["semantic", "coarse", "fine"]
    assert second.semantic is first.semantic

    # back to the first temperature: coarse and fine are served by the stage cache, and the decode
    # result still held for that fine take is fresh again, so it is not even asked for
    studio.controls["coarse_temp"].value = 0.7
    assert studio.state("decode") == "stale"  # its input is not the fine take now held
    studio.run_all_button.click()
    for stage in ("coarse", "fine"):
        assert studio.results[stage].cache_hit, stage
        assert "from cache" in studio.panels[stage].info.value
    assert studio.results["coarse"].artifact.id == first.coarse.id
    assert studio.results["decode"] is first.results["decode"]
    assert "3 hits" in studio.cache_info.value  # coarse, its preview and fine
    studio.run_buttons["decode"].click()  # asked explicitly: the cache answers
    assert studio.results["decode"].cache_hit and "from cache" in studio.panels["decode"].info.value
    assert len(studio.takes) == 2 and studio.selected == first.number  # the same take again, not a copy

    # the dice: a new seed for fine only leaves the stages before it fresh
    old = studio.settings["fine_seed"]
    studio.panels["fine"].dice.click()
    assert studio.settings["fine_seed"] != old and studio.panels["fine"].seed.value == str(studio.settings["fine_seed"])
    assert [studio.state(s) for s in STAGES] == ["fresh", "fresh", "stale", "stale", "stale"]
    studio.dice_button.click()  # every stage
    assert studio.state("semantic") == "stale" and studio.seed_text.value == str(studio.session.seed)


def test_running_a_stage_runs_missing_upstream_first(make_studio):
    studio = make_studio()
    studio.run_buttons["fine"].click()
    assert [studio.state(s) for s in STAGES] == ["fresh", "fresh", "fresh", "empty", "empty"]
    assert studio.takes[-1].stages == ["semantic", "coarse", "fine"]
    assert _is_wav(studio.panels["coarse"].players["preview"].value)
    assert studio.panels["decode"].players["decode"].value == b""
    studio.run_buttons["decode"].click()  # the same take grows; nothing before decode runs again
    assert len(studio.takes) == 1 and studio.takes[-1].stages == ["semantic", "coarse", "fine", "decode"]


def test_a_studio_take_is_the_core_take_for_the_same_seed(make_studio, tiny_dir):
    studio = make_studio(seed=5)
    take = studio.run("decode")
    ref = generate(BarkModels(tiny_dir, device="cpu"), TEXT, VOICE, seed=5, max_gen_duration_s=1)
    assert np.array_equal(take.semantic.tokens, ref.semantic.tokens)
    assert np.array_equal(take.coarse.codes, ref.coarse.codes)
    assert np.array_equal(take.fine.codes, ref.fine.codes)
    assert np.allclose(take.audio.samples, ref.audio.samples)


def test_errors_show_the_core_message_in_the_panel_and_the_studio_stays_usable(make_studio, monkeypatch, tiny_dir):
    studio = make_studio()
    studio.text.value = "   "
    studio.run_buttons["coarse"].click()  # never raises into the notebook
    assert studio.state("semantic") == "error"
    assert "Text is empty" in studio.panels["semantic"].error.value
    assert "Text is empty" in studio.status.value
    assert studio.state("coarse") == "empty"
    assert not studio.run_all_button.disabled and studio.cancel_button.disabled
    with pytest.raises(BadTextError, match="Text is empty"):  # scripts get the exception too
        studio.run("semantic")

    studio.text.value = TEXT  # fixing the setting clears the error
    assert studio.panels["semantic"].error.value == "" and studio.state("semantic") == "empty"
    studio.run_all_button.click()
    assert all(studio.state(s) == "fresh" for s in STAGES)

    # a model folder that does not exist: the core's CheckpointError, one line
    studio.controls["models"].value = "/nonexistent/bark-models"
    assert all(studio.state(s) == "stale" for s in STAGES)
    studio.run_all_button.click()
    assert "does not exist" in studio.panels["semantic"].error.value
    assert "does not exist" in studio.title.value

    # anything unexpected is one line too, and the next run works again
    studio.controls["models"].value = str(tiny_dir)
    import bark_core

    def boom(*_a, **_k):
        raise RuntimeError("fine model exploded\nwith a second line")

    monkeypatch.setattr(bark_core, "generate_fine", boom)
    studio.controls["fine_temp"].value = 0.6
    studio.run_all_button.click()
    msg = studio.panels["fine"].error.value
    assert "Unexpected RuntimeError: fine model exploded" in msg and "second line" not in msg
    assert "log" not in msg  # a notebook user has no log to look in
    monkeypatch.undo()
    studio.run_all_button.click()
    assert all(studio.state(s) == "fresh" for s in STAGES)
    assert "Traceback" not in _all_html(studio)
    # a bad seed typed into a seed box is refused in that panel
    studio.panels["coarse"].seed.value = "twelve"
    assert "whole number" in studio.panels["coarse"].error.value


def test_cancel_through_the_progress_callback(make_studio):
    studio = make_studio()

    def cancel_in_coarse(event, **data):
        if event == "progress" and data["stage"] == "coarse" and data["done"] >= 3:
            studio.cancel_button.click()

    studio.session.subscribe(cancel_in_coarse)
    studio.run_all_button.click()
    assert studio.state("semantic") == "fresh"
    assert studio.state("coarse") == "cancelled" and "cancelled" in _badge(studio, "coarse")
    assert "Cancelled during the coarse stage" in studio.panels["coarse"].error.value
    assert "coarse" not in studio.results and studio.state("fine") == "empty"
    assert not studio.run_all_button.disabled and studio.cancel_button.disabled
    studio.session.unsubscribe(cancel_in_coarse)
    studio.run_all_button.click()
    assert all(studio.state(s) == "fresh" for s in STAGES)


def test_background_thread_keeps_the_ui_live_and_cancel_works(make_studio):
    studio = make_studio(background=True)
    started, release = threading.Event(), threading.Event()

    def hold(event, **data):
        if event == "progress" and data["stage"] == "semantic" and data["done"] >= 2 and not started.is_set():
            started.set()
            release.wait(30)

    studio.session.subscribe(hold)
    studio.run_all_button.click()
    assert started.wait(30), "the background run never reached the semantic stage"
    # the run is in flight in another thread: buttons are disabled, Cancel is live
    assert studio.run_all_button.disabled and studio.run_buttons["fine"].disabled
    assert not studio.cancel_button.disabled and studio.state("semantic") == "running"
    studio.run_all_button.click()  # a second click while busy is refused politely
    assert "in progress" in studio.status.value
    studio.cancel_button.click()
    release.set()
    assert studio.wait(60)
    assert studio.state("semantic") == "cancelled" and not studio.results
    assert not studio.run_all_button.disabled and studio.cancel_button.disabled

    studio.session.unsubscribe(hold)
    studio.run_all_button.click()
    assert studio.wait(120)
    assert all(studio.state(s) == "fresh" for s in STAGES), studio.status.value


def test_history_compare_and_save(make_studio, tmp_path):
    from bark_core.label.metadata import read_label

    studio = make_studio()
    studio.run_all()
    studio.set(coarse_temp=0.95)
    studio.run_all()
    assert [t.number for t in studio.takes] == [1, 2]
    assert [v for _, v in studio.history.options] == [2, 1] and studio.history.value == 2
    assert (studio.compare_a.value, studio.compare_b.value) == (1, 2)

    studio.compare_button.click()
    cols = studio.compare_box.children
    assert len(cols) == 2
    for col in cols:
        kinds = [type(w).__name__ for w in col.children]
        assert kinds.count("Audio") == 3 and kinds.count("Image") == 4
        assert all(_is_wav(w.value) for w in col.children if type(w).__name__ == "Audio")
    assert "coarse_temp" in cols[0].children[0].value and "0.95" in cols[1].children[0].value
    assert studio.session.compare(1, 2)["differences"] == {"coarse_temp": (0.7, 0.95)}

    studio.history.value = 1  # pick a take: the quality panel and the save buttons follow it
    assert "take #1" in studio.qc_title.value
    folder = tmp_path / "saved"
    studio.save_folder.value = str(folder)
    studio.save_artifacts_button.click()
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"take001.{s}.npz" for s in sorted(STAGES)]
    assert load_artifact(folder / "take001.coarse.npz").id == studio.takes[0].coarse.id
    studio.save_audio_button.click()
    label = read_label(folder / "take001.wav")
    assert label["AI_GENERATED"] is True and label["review"]["human_review"] == "unreviewed"
    assert label["qc"]["passed"] is False  # the quality report's summary rides along
    studio.save_voice_button.click()
    assert load_voice(str(folder / "take001.voice.npz")).fine.shape[0] == 8
    assert "take001.voice.npz" in studio.save_msg.value

    studio.save_artifacts_button.click()  # no overwrite: the message says so, nothing is lost
    assert "already exists" in studio.save_msg.value
    studio.save_overwrite.value = True
    studio.save_artifacts_button.click()
    assert "Saved" in studio.save_msg.value
    studio.save_format.value = "flac"
    paths = studio.save_take(2, folder, artifacts=False, audio=True, audio_format="flac")
    assert paths[0].name == "take002.flac" and read_label(paths[0])["AI_GENERATED"] is True


def test_quality_report_and_review(make_studio, tmp_path):
    studio = make_studio()
    studio.run_buttons["fine"].click()
    assert "decode" in studio.quality.value  # no audio yet: the panel says what to do
    studio.approve_button.click()
    assert "no audio yet" in studio.review_info.value
    studio.run_all_button.click()
    take = studio.takes[-1]
    assert take.quality is not None and take.quality.codes("info") == ["untrained_models"]
    assert "not_speech" in studio.quality.value
    assert "UNREVIEWED" in studio.review_info.value

    studio.reviewer.value = ""
    studio.approve_button.click()
    assert "reviewer" in studio.review_info.value and "⚠" in studio.review_info.value
    studio.reviewer.value = "Ada"
    studio.review_note.value = "clean enough for a test"
    studio.approve_button.click()
    assert "APPROVED" in studio.review_info.value and "Ada" in studio.review_info.value
    assert studio.review().state == "approved" and "approved" in studio.history.options[0][0]
    assert list((tmp_path / "reviews").glob("*.json"))  # the decision is on disk, in the given store

    studio.run_buttons["label"].click()  # the label records the decision
    assert "approved" in studio.panels["label"].info.value
    studio.review_note.value = "on second listen: noise"
    studio.reject_button.click()
    assert "REJECTED" in studio.review_info.value and "second listen" in studio.review_info.value
    with pytest.raises(Exception, match="rejected"):
        studio.save_take(take, tmp_path / "pub", artifacts=False, audio=True, public=True)


def test_voice_picker_upload_take_voice_and_recorded_voice_needs_rights(make_studio, tmp_path):
    from bark_core.label.metadata import read_label

    studio = make_studio(voice=None)
    langs = [v for _, v in studio.language.options]
    assert langs[0] == "none" and "English" in langs and "German" in langs and "Other" in langs
    assert "No voice prompt" in studio.voice_info.value
    studio.language.value = "English"
    assert ("v2/en_speaker_6", VOICE) in studio.speaker.options
    studio.speaker.value = VOICE
    assert studio.settings["voice"] == VOICE and "preset" in studio.voice_info.value

    studio.run_buttons["fine"].click()
    studio.take_voice_button.click()  # "use last generation as voice"
    key = studio.settings["voice"]
    assert key.startswith("take:1#") and studio.language.value == "Your voices"
    assert "generated take" in studio.voice_info.value
    assert studio.state("semantic") == "stale"  # a new voice changes every stage

    # upload a .npz voice
    voice_file = studio.session.voices[key].save(tmp_path / "mine.npz")
    studio.voice_upload.value = _upload("mine.npz", voice_file.read_bytes())
    assert studio.settings["voice"].startswith("file:mine#") and studio.voice_upload.value == ()
    studio.voice_upload.value = _upload("broken.npz", b"not a zip")
    assert "cannot be read as a voice" in studio.voice_msg.value

    # a voice from a recording: no consent statement, no voice
    studio.rec_upload.value = _upload("jane.wav", _wav_bytes())
    studio.rec_who.value = ""
    studio.rec_right.value = "written consent"
    studio.rec_button.click()
    assert "needs who" in studio.voice_msg.value and not studio.settings["voice"].startswith("audio:")
    studio.rec_who.value = "Jane Doe"
    studio.rec_when.value = "2024-05-01"
    studio.rec_evidence.value = "release form #12"
    studio.rec_button.click()
    assert studio.settings["voice"].startswith("audio:jane#"), studio.voice_msg.value
    info = studio.voice_info.value
    assert "Rights record" in info and "Jane Doe" in info and "written consent" in info and "2024-05-01" in info
    assert "Semantic prompt: HuBERT + quantizer_tiny_untrained.pth" in info  # the full clone, by default
    assert studio.session.voices[studio.settings["voice"]].semantic.size > 0
    assert "jane.wav: Only 1.5 s of speech" in studio.voice_msg.value  # what the recording check heard

    studio.run_all_button.click()
    assert all(studio.state(s) == "fresh" for s in STAGES), studio.status.value
    origin = studio.takes[-1].labelled.provenance.settings["label"]["voice_origin"]
    assert origin["kind"] == "audio" and origin["rights"]["who"] == "Jane Doe" and origin["file"] == "jane.wav"
    path = studio.save_take(None, tmp_path / "out2", artifacts=False, audio=True)[0]
    assert read_label(path)["voice_origin"]["rights"]["right"] == "written consent"
    with pytest.raises(Exception, match="needs right"):
        studio.voice_from_audio(_wav_bytes(), who="Jane", right="", when="2024-05-01")


def test_plain_python_api_and_widget_stay_in_step(make_studio, tiny_dir):
    studio = make_studio()
    assert studio.set(coarse_temp=0.9, fine_temp=None) is studio
    assert studio.controls["coarse_temp"].value == 0.9 and studio.controls["fine_temp"].value == 0.0
    studio.controls["fine_temp"].value = 0.5
    assert studio.settings["fine_temp"] == 0.5
    with pytest.raises(StudioError, match="Unknown setting"):
        studio.set(temperature=1)
    with pytest.raises(StudioError, match="Unknown stage"):
        studio.run("vocoder")
    studio.set(seed=9)
    assert studio.seed_text.value == "9" and studio.panels["coarse"].seed.value == str(studio.settings["coarse_seed"])
    take = studio.run("coarse")
    assert take is studio.takes[-1] and take.coarse is not None and take.fine is None
    assert studio.state("coarse") == "fresh" and studio.state("fine") == "empty"
    assert studio.run_all().labelled is not None and len(studio.takes) == 1
    with pytest.raises(StudioError, match="no take 7"):
        studio.take(7)
    studio.set(voice=None)
    assert studio.language.value == "none"

    # a ready BarkModels is used as it is (no reload), and gets the studio's cache when it has none
    models = BarkModels(tiny_dir, device="cpu")
    given = make_studio(models=models, cache=False)
    assert given.session.models() is models and given.settings["device"] == "cpu"
    assert given.session.cache is None and given.controls["device"].value == "cpu"

    # the core's warnings reach the panel: text over the 256-token window is cut, and says so
    studio.text.value = " ".join(["supercalifragilistic"] * 200)
    studio.run_buttons["semantic"].click()
    assert "Text too long" in studio.panels["semantic"].info.value, studio.panels["semantic"].info.value

    # the same engine without any widget, for scripts
    session = Session(tiny_dir, cache=False, text=TEXT, seed=1, max_gen_duration_s=1, device="cpu")
    events: list[str] = []
    session.subscribe(lambda e, **_: events.append(e))
    assert session.run("semantic").semantic.n_frames > 0
    assert {"busy", "stage", "progress", "result", "take", "done"} <= set(events)
    with pytest.raises(Exception, match="Unknown voice"):
        session.set(voice="v2/en_speeker_6")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart", "stages"])
def test_example_notebooks_run_top_to_bottom(name, tmp_path):
    if importlib.util.find_spec("nbclient") is None or importlib.util.find_spec("ipykernel") is None:
        pytest.skip("executing the example notebooks needs nbclient and ipykernel")
    import nbclient
    import nbformat

    path = Path(__file__).resolve().parents[1] / "examples" / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit notebooks without outputs"
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    widget_views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                    if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widget_views, "the studio should display as a widget"
