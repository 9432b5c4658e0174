"""The studio shows what runs and plays what is reviewed: seeds, selected takes, status, history, errors, memory.

Python-level checks of issue 21 (the layout checks are in the browser test). Tiny untrained models on
the CPU, clips cut to ~0.3 s; nothing here depends on the machine's speed: progress timing uses a
fake clock, and waits on threads are bounded joins on events the test controls.
"""

from __future__ import annotations

import gc
import io
import threading
import wave
from datetime import datetime, timezone

import numpy as np
import pytest

pytest.importorskip("ipywidgets", minversion="8")

import ipywidgets.widgets.widget as widget_module  # noqa: E402
import test_studio  # noqa: E402

from bark_core.label import detect, labelled_wav_bytes  # noqa: E402
from bark_studio import RunCancelled, Studio, StudioError  # noqa: E402

TEXT, VOICE = test_studio.TEXT, test_studio.VOICE
make_studio = test_studio.make_studio  # the studio factory, shared; its takes here are studio_take_s long


@pytest.fixture()
def studio_take_s() -> float:
    return 0.3  # short takes: these tests make many of them


def _samples(wav: bytes) -> bytes:
    """The audio frames of a WAV (its label metadata records when it was written, so whole files differ)."""
    with wave.open(io.BytesIO(wav)) as w:
        return w.readframes(w.getnframes())


def _seeds_used(studio: Studio) -> dict[str, int]:
    return {s: studio.results[s].artifact.provenance.seed for s in ("semantic", "coarse", "fine")}


def _seed_fields(studio: Studio) -> dict[str, int]:
    return {s: int(studio.panels[s].seed.value) for s in ("semantic", "coarse", "fine")}


# ---- 1: a seed field never shows one value while another is used ------------------------------------
def test_invalid_seed_input_stays_visible_blocks_the_run_and_fields_show_the_seeds_used(make_studio):
    studio = make_studio()
    studio.run("fine")
    before = {s: r.artifact.id for s, r in studio.results.items()}
    assert _seed_fields(studio) == _seeds_used(studio)
    assert studio.seed_text.value == "1"

    coarse = studio.panels["coarse"]
    coarse.seed.value = "1.5"
    studio.set(fine_temp=0.3)  # any later redraw must not wipe the message
    assert studio.state("coarse") == "invalid"
    assert coarse.seed.value == "1.5" and "bark-field-invalid" in coarse.seed._dom_classes
    assert "coarse_seed" in coarse.error.value and "1.5" in coarse.error.value
    with pytest.raises(StudioError, match="invalid input"):
        studio.run("fine")
    studio.run_all_button.click()  # the button shows the refusal and runs nothing
    assert "invalid input" in studio.status.value
    assert {s: r.artifact.id for s, r in studio.results.items()} == before

    studio.seed_text.value = "-5"
    assert studio.seed_text.value == "-5" and "bark-field-invalid" in studio.seed_text._dom_classes
    assert studio.state("semantic") == "invalid"
    assert "-5" in studio.panels["semantic"].error.value

    studio.seed_text.value = "42"  # a valid master seed fixes both: every field shows what will be used
    assert studio.session.invalid_inputs() == {}
    assert "invalid input" not in studio.status.value  # the refusal goes with its cause
    assert "bark-field-invalid" not in coarse.seed._dom_classes
    studio.run("fine")
    assert studio.seed_text.value == "42"
    assert _seed_fields(studio) == _seeds_used(studio)


def test_dice_seeds_are_short_and_any_int_stays_valid_in_python(make_studio):
    studio = make_studio()
    for _ in range(5):
        assert 0 <= studio.reroll() < 2**31
    studio.set(coarse_seed=2**63 - 1)
    assert studio.panels["coarse"].seed.value == str(2**63 - 1)


# ---- 2: selecting a take loads its players, plots and report; review acts on what is shown ---------
def test_selecting_a_take_shows_that_take_everywhere_and_review_acts_on_it(make_studio):
    studio = make_studio(reviewer="ada")
    first = studio.run_all()
    studio.review_note.value = "buzzes at the end"
    studio.set(seed=2)
    second = studio.run_all()
    assert studio.selected == second.number

    studio.history.value = first.number  # as a click in the History list does
    assert studio.selected == first.number
    for stage, name, art in (("decode", "decode", first.audio), ("label", "label", first.labelled),
                             ("coarse", "preview", first.preview)):
        assert _samples(studio.panels[stage].players[name].value) == _samples(labelled_wav_bytes(art)), name
    assert studio.panels["semantic"].image.value == first.results["semantic"].images["main"]
    assert f"take #{first.number}" in studio.qc_title.value
    assert studio.review_note.value == "" and studio.reviewer.value == "ada"  # nothing of the other take
    assert studio.seed_text.value == "1" and _seed_fields(studio) == _seeds_used(studio)
    assert set(studio.session.states().values()) == {"fresh"}

    studio.review_note.value = "clean"
    studio.approve_button.click()
    assert studio.review(first).state == "approved"
    assert studio.review(second).state == "unreviewed"
    studio.history.value = second.number
    assert studio.review_note.value == ""
    studio.history.value = first.number
    assert studio.review_note.value == "clean"  # the note recorded for this take


# ---- 4: the status line says what is happening ------------------------------------------------------
def test_status_says_loading_only_when_loading_steps_with_times_and_from_cache(make_studio, tmp_path):
    from bark_studio.status import progress_line

    studio = make_studio()
    events: list[tuple[str, dict]] = []
    studio.session.subscribe(lambda event, **data: events.append((event, data)))
    ticks = iter(range(0, 100_000))
    studio.session.clock = lambda: float(next(ticks))  # one "second" a reading: no wall time involved
    studio.run_all()
    loads = [d["model"] for e, d in events if e == "loading"]
    assert loads == ["text", "coarse", "codec", "fine"]  # codec first for the coarse preview
    steps = [d for e, d in events if e == "progress" and d["total"] > 1 and d["done"] < d["total"]]
    assert steps and all(d["text"].startswith(f"{d['stage']}: step {d['done']} of {d['total']}") for d in steps)
    assert any("elapsed" in d["text"] and "left" in d["text"] for d in steps)
    assert progress_line("coarse", 30, 120, 3.0, 9.0) == "coarse: step 30 of 120 · 3.0 s elapsed · about 9.0 s left"

    events.clear()
    again = make_studio()  # a new studio on the same cache: every stage, preview included, from the cache
    again.session.subscribe(lambda event, **data: events.append((event, data)))
    again.run_all()
    assert [e for e, _ in events if e == "loading"] == []
    finals = [d["text"] for e, d in events if e == "progress" and d["done"] == d["total"] == 1]
    assert finals[:4] == ["semantic: from cache", "coarse: from cache", "fine: from cache", "decode: from cache"]
    assert again.session.cache_stats()["by_stage"]["coarse_preview"]["hits"] == 1
    assert "from cache" in again.panels["coarse"].info.value


# ---- 6: the coarse preview is cached with the coarse codes and can be cancelled ---------------------
def test_coarse_preview_can_be_cancelled_and_keeps_the_codes(make_studio, monkeypatch):
    studio = make_studio()
    started, release = threading.Event(), threading.Event()
    real = studio.session._preview

    def slow_preview(models, coarse):
        started.set()
        release.wait(60)
        return real(models, coarse)

    monkeypatch.setattr(studio.session, "_preview", slow_preview)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            studio.run("coarse")
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert started.wait(120)
    studio.cancel()
    worker.join(60)
    release.set()
    assert not worker.is_alive() and outcome and isinstance(outcome[0], RunCancelled)
    assert studio.state("coarse") == "cancelled"
    assert studio.results["coarse"].preview is None and studio.results["coarse"].artifact is not None


# ---- 7: stale and failed content looks it -----------------------------------------------------------
def test_stale_and_cancelled_panels_say_so_and_plots_carry_no_state_word(make_studio):
    from bark_studio.panels import _plot_title

    studio = make_studio()
    studio.run_all()
    for result in studio.results.values():
        title = _plot_title(result).lower()
        assert "fresh" not in title and "cache" not in title
    assert studio.panels["fine"].state_note.value == ""
    studio.set(fine_temp=0.2)
    fine = studio.panels["fine"]
    assert "bark-stale" in fine.box._dom_classes and "stale" in fine.state_note.value
    assert "bark-result" in fine.image._dom_classes and "bark-result" in fine.info._dom_classes
    from bark_studio.ui import CSS  # its rules dim .bark-result inside stale, error and cancelled panels

    for state in ("stale", "error", "cancelled"):
        assert f".bark-{state} .bark-result" in CSS


# ---- 8: history without duplicates, entries that say what they are ---------------------------------
def test_history_has_no_duplicate_takes_and_titles_name_text_and_voice(make_studio):
    studio = make_studio(text="A fairly long sentence for the history title to cut short.")
    studio.run_all()
    studio.run_all()  # everything from the cache: the same take, not a new one
    studio.run("semantic")
    assert len(studio.takes) == 1
    title = studio.history.options[0][0]
    assert "“A fairly long sentence" in title and "…" in title and "en_speaker_6" in title
    studio.set(fine_seed=5)
    studio.run_all()
    assert len(studio.takes) == 2 and len(studio.history.options) == 2


# ---- 9: errors go when their cause does; messages a person can act on ------------------------------
def test_errors_clear_when_fixed_and_messages_name_the_real_cause(make_studio):
    studio = make_studio()
    import torch

    studio.set(device="cuda")
    if not torch.cuda.is_available():  # the reason is shown where the models are named, not "see the log"
        assert "no CUDA GPU" in studio.title.value and "details in the log" not in studio.title.value
    studio.set(device="cpu")
    assert "⚠" not in studio.title.value

    now = datetime.now(timezone.utc)
    studio.voice_upload.value = ({"name": "garbage.npz", "type": "", "size": 9, "content": memoryview(b"not a zip"),
                                  "last_modified": now},)
    msg = studio.voice_msg.value
    assert "garbage.npz" in msg and "bark-studio-" not in msg and "/tmp" not in msg
    buf = io.BytesIO()
    np.savez(buf, semantic_prompt=np.array([object()], dtype=object))
    studio.voice_upload.value = ({"name": "pickled.npz", "type": "", "size": len(buf.getvalue()),
                                  "content": memoryview(buf.getvalue()), "last_modified": now},)
    assert "pickled.npz" in studio.voice_msg.value
    assert "allow_pickle" not in studio.voice_msg.value and "unsafe" not in studio.voice_msg.value

    studio.panels["fine"].seed.value = "x"
    assert "fine_seed" in studio.panels["fine"].error.value
    studio.panels["fine"].seed.value = "7"
    assert studio.panels["fine"].error.value == ""
    assert studio.rec_when.value == ""  # the consent date is asked for, never assumed


def test_offline_tokenizer_error_is_short_and_does_not_advise_what_is_set(monkeypatch, tmp_path):
    from bark_core import BarkError
    from bark_core.models.tokenizer import load_tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BarkError) as info:
        load_tokenizer(cache_dir=tmp_path / "empty-hub")
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1" not in message.split("offline mode")[-1]
    assert "local_files_only' to False" not in message and len(message) < 500


# ---- 10: memory stays flat and replaced widgets are closed -----------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status")


def test_memory_and_widget_count_stay_flat_over_twenty_takes(make_studio):
    # each take a new fine seed: the semantic and coarse stages stay fresh, so twenty whole takes (fine,
    # decode, quality check, label, pictures, players, history entry, a comparison) stay cheap
    # (as in a notebook: each run in its own background thread, started by the button)
    studio = make_studio(text="Hi.", max_gen_duration_s=0.2, background=True)

    def take(fine_seed: int) -> None:
        studio.set(fine_seed=fine_seed)
        studio.run_all_button.click()
        assert studio.wait(600), "the run did not end"
        assert "Done" in studio.status.value, studio.status.value

    take(1)
    take(2)
    studio.compare(1, 2)
    gc.collect()
    rss0, widgets0 = _rss_mb(), len(widget_module._instances)
    for i in range(20):
        take(100 + i)
        studio.compare(studio.takes[-2].number, studio.takes[-1].number)
    gc.collect()
    assert len(studio.takes) == 22
    assert len(widget_module._instances) == widgets0  # compare closes what it replaces
    assert abs(_rss_mb() - rss0) <= 150


# ---- the new capabilities: long-form, decoder and precision pickers, watermark key ----------------
def test_long_form_panel_runs_chunk_by_chunk_with_a_player_per_chunk(make_studio):
    studio = make_studio(text="First sentence here. Second one follows.", max_gen_duration_s=0.2)
    studio.long_max_chars.value = 25
    studio.long_continuity.value = "carry"
    studio.long_button.click()
    long = studio.session.long_take
    assert long is not None and len(long.takes) == 2 and long.seed == 1
    players = [w for box in studio.long_chunks.children for w in box.children if type(w).__name__ == "Audio"]
    assert len(players) == 3  # the joined piece and one per chunk
    assert _samples(players[0].value) == _samples(labelled_wav_bytes(long.audio))
    assert _samples(players[2].value) == _samples(labelled_wav_bytes(long.takes[1].audio))
    assert "Done: 2 chunks" in studio.long_status.value
    assert long.voices_used[1] != long.voices_used[0]  # "carry": chunk 2 speaks with chunk 1's voice


def test_stream_box_plays_the_first_chunk_then_the_labelled_take(make_studio, tmp_path):
    studio = make_studio(max_gen_duration_s=1.4, watermark_key="stream-secret")
    studio.stream_chunk_s.value = 0.4
    studio.stream_button.click()
    take = studio.session.stream_take
    assert take is not None and take.seed == 1
    first = _samples(studio.stream_first.value)
    assert 0 < len(first) < len(_samples(studio.stream_whole.value))  # the first chunk, not the whole take
    assert studio.stream_first.autoplay and not studio.stream_whole.autoplay
    whole = tmp_path / "whole.wav"
    whole.write_bytes(studio.stream_whole.value)
    assert detect(str(whole), key="stream-secret").detected  # the studio's key, not the default one
    assert not detect(str(whole)).detected
    assert "Done:" in studio.stream_status.value and "first audio after" in studio.stream_status.value
    assert take.fine.provenance.settings["fine_window"] == 256
    studio.stream_fine_window.value = 1024
    studio.stream_button.click()
    assert studio.session.stream_take.fine.provenance.settings["fine_window"] == 1024
    studio.set(text="")  # a bad input is shown in the box, nothing runs
    studio.stream_button.click()
    assert "text" in studio.stream_status.value.lower(), studio.stream_status.value
    assert studio.session.stream_take is not None and not studio.session.busy


def test_precision_and_decoder_pickers_follow_the_core(make_studio, monkeypatch):
    import bark_core.models as core_models
    from bark_core.sampling import DECODERS

    studio = make_studio()
    assert tuple(studio.controls["dtype"].options) == tuple(core_models.PRECISION_NAMES)
    assert tuple(studio.controls["decoder"].options) == tuple(DECODERS)
    studio.controls["decoder"].value = "eager"
    assert studio.session.models().decoder == "eager"
    monkeypatch.setattr(core_models, "PRECISION_NAMES", (*core_models.PRECISION_NAMES, "int8-test"))
    assert "int8-test" in make_studio().controls["dtype"].options  # a new core precision appears by itself


def test_watermark_key_marks_the_label_and_never_shows(make_studio, tmp_path):
    studio = make_studio()
    studio.run_all()
    studio.watermark_key.value = "our secret key"
    assert studio.state("label") == "stale" and studio.state("decode") == "fresh"
    take = studio.run_all()
    assert detect(take.labelled, key="our secret key").detected
    assert "our secret key" not in repr(studio.settings) and "our secret key" not in studio.take_details.value
    path = studio.save_take(take, tmp_path / "keyed", artifacts=False, audio=True)[0]
    from bark_core import read_audio

    assert detect(read_audio(path), key="our secret key").detected
