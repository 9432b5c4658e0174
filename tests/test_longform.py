"""Long texts: split within the window, joined with the right gaps, voices carried as asked."""

from __future__ import annotations

import numpy as np
import pytest

from bark_core.stages.longform import LongFormError, generate_long, split_sentences, split_text


@pytest.mark.parametrize("text, want", [
    ("Dr. Smith paid $3.50 for it. Then he left! Did he? Yes.",
     ["Dr. Smith paid $3.50 for it.", "Then he left!", "Did he?", "Yes."]),
    ("J. R. R. Tolkien wrote e.g. books. The U.S. economy grew.",
     ["J. R. R. Tolkien wrote e.g. books.", "The U.S. economy grew."]),
    ('He said "Stop." She stopped.', ['He said "Stop."', "She stopped."]),
    ("Wait... what was that? I don't know… Maybe.", ["Wait... what was that?", "I don't know…", "Maybe."]),
    ("你好。今天天气很好！我们去公园吧？好的", ["你好。", "今天天气很好！", "我们去公园吧？", "好的"]),
    ("Version 2.0 costs 3.14 dollars. Fine.", ["Version 2.0 costs 3.14 dollars.", "Fine."]),
])
def test_sentence_splitter_handles_abbreviations_decimals_quotes_ellipses_and_cjk(text, want):
    assert split_sentences(text) == want


def test_cues_pass_through_unchanged():
    text = "[laughter] Oh WOW — really? ♪ la la la ♪ [music] [sighs] Okay."
    assert " ".join(split_sentences(text)) == text


def test_chunks_fit_the_window_and_keep_every_word(tiny_models):
    sentence = "This sentence, which rambles on and on, has many words in it; it never seems to end"
    text = " ".join([f"{sentence} number {i}." for i in range(12)]) + " " + ("long, " * 300) + "end."
    chunks = split_text(text, max_chars=180, tokenizer=tiny_models.tokenizer)
    assert all(len(c) <= 180 and len(tiny_models.tokenizer.encode(c)) <= 256 for c in chunks)
    assert " ".join(chunks).split() == text.split()
    assert chunks[0].endswith("number 0.") or chunks[0].endswith("number 1.")  # whole sentences packed


def _progress_log():
    log: list[tuple] = []
    return log, lambda *a: log.append(a)


def test_long_form_joins_chunks_with_the_gap_and_is_repeatable(tiny_models):
    text = "First sentence here. Second one follows! And a third?"
    log, cb = _progress_log()
    kw = dict(allow_early_stop=False, max_gen_duration_s=0.4, max_chars=25)
    long = generate_long(tiny_models, text, seed=3, gap_s=0.5, progress=cb, **kw)
    assert long.chunks == ["First sentence here.", "Second one follows!", "And a third?"]
    gap = int(0.5 * 24000)
    assert long.audio.n_samples == sum(t.audio.n_samples for t in long.takes) + 2 * gap
    start = long.takes[0].audio.n_samples
    assert not long.audio.samples[start:start + gap].any()
    assert {entry[0] for entry in log} == {1, 2, 3} and all(entry[1] == 3 for entry in log)
    assert {entry[2] for entry in log} == {"semantic", "coarse", "fine", "decode"}
    again = generate_long(tiny_models, text, seed=3, gap_s=0.5, **kw)
    np.testing.assert_array_equal(again.audio.samples, long.audio.samples)
    assert len(set(long.seeds)) == 3


@pytest.mark.parametrize("mode, expected", [
    ("fixed", ["v2/en_speaker_6"] * 4),
    ("carry", ["v2/en_speaker_6", "chunk1#", "chunk2#", "chunk3#"]),
    ("reset", ["v2/en_speaker_6", "chunk1#", "v2/en_speaker_6", "chunk3#"]),
])
def test_continuity_modes_feed_the_expected_history(tiny_models, mode, expected):
    text = "First. Second. Third. Fourth."
    long = generate_long(tiny_models, text, "v2/en_speaker_6", seed=1, continuity=mode, reset_every=2,
                         max_chars=10, allow_early_stop=False, max_gen_duration_s=0.3)
    assert len(long.voices_used) == 4
    for used, want in zip(long.voices_used, expected, strict=True):
        assert used.startswith(want)
    if mode == "carry":  # the carried voice is exactly the previous chunk's take
        prev = long.takes[0]
        assert long.takes[1].semantic.provenance.voice == f"chunk1#{prev.voice('chunk1').id}"


def test_failure_in_chunk_k_reports_k_and_keeps_earlier_chunks(tiny_models):
    def fail_in_third(chunk, n, stage, done, total):
        if chunk == 3 and stage == "coarse":
            raise RuntimeError("device lost")

    with pytest.raises(LongFormError, match=r"Chunk 3 of 4 .*device lost.*1\.\.2") as err:
        generate_long(tiny_models, "First. Second. Third. Fourth.", seed=2, max_chars=10, allow_early_stop=False,
                      max_gen_duration_s=0.3, progress=fail_in_third)
    assert err.value.chunk == 3
    partial = err.value.partial
    assert len(partial.takes) == 2 and partial.chunks[:2] == ["First.", "Second."]
    assert partial.audio.n_samples == sum(t.audio.n_samples for t in partial.takes) + int(0.25 * 24000)


def test_long_take_label_meta_covers_the_whole_text(tiny_models):
    long = generate_long(tiny_models, "First. Second.", "v2/en_speaker_6", seed=5, max_chars=10,
                         allow_early_stop=False, max_gen_duration_s=0.3)
    meta = long.label_meta()
    assert meta["text"] == "First. Second." and meta["seed"] == 5 and meta["voice"] == "v2/en_speaker_6"
    assert long.audio.provenance.extra["voice_origin"]["kind"] == "preset"
    # each chunk's stages, and every voice once with the stages of every chunk that used it
    assert [c["fine"]["voice"] for c in meta["chunk_stages"]] == ["v2/en_speaker_6"] * 2
    assert [c["semantic"]["seed"] for c in meta["chunk_stages"]] == [t.semantic.provenance.seed for t in long.takes]
    assert [(o["kind"], o["stages"]) for o in meta["voice_origins"]] == [("preset", ["semantic", "coarse", "fine"])]
    carried = generate_long(tiny_models, "First. Second.", "v2/en_speaker_6", seed=5, max_chars=10,
                            continuity="carry", allow_early_stop=False, max_gen_duration_s=0.3).label_meta()
    assert [o["kind"] for o in carried["voice_origins"]] == ["preset", "generated"]
