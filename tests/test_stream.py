"""Streamed takes: chunks that join to the one-shot length with the same semantic and coarse tokens, carry
one unbroken watermark, no steps at the joins; bad chunk sizes refused; bark-say --stream writes a
playable labelled file and leaves nothing under the final name when interrupted."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest

import bark_core
from bark_core import Audio, BarkModels, ParameterError, generate, generate_stream
from bark_core.cli import say_main
from bark_core.label import detect, read_label
from bark_core.label.stream import FADE, FRAME
from bark_core.models.tiny import write_tiny_model_set

TEXT = "Streaming, chunk by chunk."
KW = dict(max_gen_duration_s=1.4, allow_early_stop=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_model_set(tmp_path_factory.mktemp("stream"), n_embd=64, n_head=2, seed=5)


@pytest.fixture(scope="module")
def streamed(tiny):
    models = BarkModels(tiny, device="cpu")
    return models, list(generate_stream(models, TEXT, seed=7, chunk_s=0.4, fine_temp=None, **KW))


def test_chunks_join_to_the_one_shot_length_with_the_same_coarse_tokens(streamed):
    models, chunks = streamed
    assert len(chunks) >= 3 and [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].final and chunks[-1].take is not None and not any(c.final for c in chunks[:-1])
    take = chunks[-1].take
    one = generate(models, TEXT, seed=7, fine_temp=None, **KW)
    np.testing.assert_array_equal(take.semantic.tokens, one.semantic.tokens)
    np.testing.assert_array_equal(take.coarse.codes, one.coarse.codes)
    assert take.fine.codes.shape == one.fine.codes.shape
    np.testing.assert_array_equal(take.fine.codes[:2], one.fine.codes[:2])
    joined = np.concatenate([c.samples for c in chunks])
    assert joined.size == take.audio.samples.size == one.audio.samples.size
    starts = np.cumsum([0] + [c.samples.size for c in chunks[:-1]]) / 24_000
    np.testing.assert_allclose([c.start_s for c in chunks], starts)
    assert take.fine.provenance.settings["streamed"] is True and take.audio.provenance.settings["chunk_s"] == 0.4


def test_joined_chunks_carry_the_mark_and_the_take_exports_labelled(streamed, tmp_path):
    _, chunks = streamed
    take = chunks[-1].take
    joined = np.concatenate([c.samples for c in chunks])
    assert detect(Audio(samples=joined, sample_rate=24_000, provenance=take.audio.provenance)).detected
    assert not detect(take.audio).detected  # the take's own audio is unmarked, as from generate()
    path = bark_core.export_audio(take.audio, tmp_path / "t.wav", **take.label_meta())
    assert detect(str(path)).detected and read_label(path) is not None


def test_joins_have_no_step(streamed):
    _, chunks = streamed
    joined = np.concatenate([c.samples for c in chunks])
    typical = np.median(np.abs(np.diff(joined)))
    at = np.cumsum([c.samples.size for c in chunks[:-1]])
    jumps = np.abs(joined[at] - joined[at - 1])
    assert (jumps < 20 * typical + 1e-4).all(), (jumps, typical)
    assert FADE * FRAME < chunks[0].samples.size


@pytest.mark.parametrize("bad", [0, 100, 1025, 256.0, True])
def test_fine_windows_out_of_range_are_refused(tiny, bad):
    with pytest.raises(ParameterError, match="fine_window must be"):
        generate_stream(BarkModels(tiny, device="cpu"), TEXT, fine_window=bad)


@pytest.mark.parametrize("window", [None, 1024])
def test_streamed_fine_passes_span_the_fine_window(tiny, window):
    # the fine passes are what made first audio late: each streamed pass spans fine_window frames (default 256),
    # never the one-shot 1,024, unless asked
    models = BarkModels(tiny, device="cpu")
    fine = models.get("fine").model
    spans = []
    hook = fine.register_forward_pre_hook(lambda _m, args: spans.append(args[1].shape[1]))
    try:
        extra = {} if window is None else {"fine_window": window}
        chunks = list(generate_stream(models, TEXT, seed=3, chunk_s=0.4, **extra, **KW))
    finally:
        hook.remove()
    assert len(chunks) > 2 and set(spans) == {window or 256}
    assert chunks[-1].take.fine.provenance.settings["fine_window"] == (window or 256)


def test_taking_turns_on_a_full_cpu_gives_the_same_take(tiny, monkeypatch):
    # when torch's threads fill the cores, the coarse worker waits while a chunk is made; the take must not change
    import bark_core.label.stream as stream

    models = BarkModels(tiny, device="cpu")
    runs = []
    for cores in (1, 10_000):
        monkeypatch.setattr(stream.os, "cpu_count", lambda cores=cores: cores)
        assert stream._cpu_is_full(models) == (cores == 1)
        runs.append(list(generate_stream(models, TEXT, seed=5, chunk_s=0.4, **KW)))
    assert [c.samples.size for c in runs[0]] == [c.samples.size for c in runs[1]]
    np.testing.assert_array_equal(runs[0][-1].take.fine.codes, runs[1][-1].take.fine.codes)
    np.testing.assert_array_equal(np.concatenate([c.samples for c in runs[0]]),
                                  np.concatenate([c.samples for c in runs[1]]))


@pytest.mark.parametrize("bad", [0.1, 9, float("nan"), "2", True])
def test_chunk_sizes_out_of_range_are_refused(tiny, bad):
    with pytest.raises(ParameterError, match="chunk_s must be"):
        generate_stream(BarkModels(tiny, device="cpu"), TEXT, chunk_s=bad)


def test_bark_say_stream_writes_a_playable_labelled_file(tiny, tmp_path, capsys):
    out = tmp_path / "s.wav"
    assert say_main([TEXT, "--models", str(tiny), "--device", "cpu", "--seed", "3", "--max-duration", "1.5",
                     "--stream", "--chunk-s", "0.5", "-o", str(out)]) == 0
    assert "first audio after" in capsys.readouterr().err
    with wave.open(str(out)) as w:
        assert w.getframerate() == 24_000 and w.getnframes() > 24_000
    assert detect(str(out)).detected and read_label(out) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["s.wav"]  # the growing part file is gone
    if shutil.which("ffprobe"):
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate", "-of", "csv=p=0",
                                str(out)], capture_output=True, text=True, check=True)
        assert probe.stdout.strip() == "24000"
    assert say_main([TEXT, "--models", str(tiny), "--stream", "--chunk-s", "30", "-o", str(tmp_path / "x.wav")]) == 2
    assert say_main([TEXT, "--models", str(tiny), "--stream", "--long", "-o", str(tmp_path / "x.wav")]) == 2
    bad_window = [TEXT, "--models", str(tiny), "--stream", "--fine-window", "64", "-o", str(tmp_path / "x.wav")]
    assert say_main(bad_window) == 2
    assert "fine_window must be" in capsys.readouterr().err


def test_an_interrupted_stream_leaves_no_file(tiny, tmp_path, monkeypatch):
    import bark_core.label as label_pkg

    real = label_pkg.generate_stream

    def broken(*a, **k):
        for chunk in real(*a, **k):
            yield chunk
            raise KeyboardInterrupt

    monkeypatch.setattr(label_pkg, "generate_stream", broken)
    rc = say_main([TEXT, "--models", str(tiny), "--device", "cpu", "-q", "--max-duration", "1.5", "--stream",
                   "--chunk-s", "0.4", "-o", str(tmp_path / "s.wav")])
    assert rc != 0 and list(tmp_path.iterdir()) == []


def test_studio_stream_player_plays_the_first_chunk_and_gets_the_labelled_take(tiny):
    pytest.importorskip("ipywidgets", minversion="8")
    from bark_studio.stream_player import StreamPlayer

    player = StreamPlayer(BarkModels(tiny, device="cpu"))
    with pytest.raises(ParameterError, match="chunk_s"):
        player.play(TEXT, chunk_s=0)
    take = player.play(TEXT, seed=2, chunk_s=0.4, **KW).wait(timeout=600)
    assert player.first.value[:4] == b"RIFF" and player.first_audio_s is not None
    assert take is not None and player.whole.value[:4] == b"RIFF"
    assert "take done" in player.status.value


def test_a_take_in_one_chunk_is_the_one_shot_take(tiny):
    models = BarkModels(tiny, device="cpu")
    kw = dict(max_gen_duration_s=1.0, allow_early_stop=False)
    chunks = list(generate_stream(models, TEXT, seed=4, chunk_s=8, first_chunk_s=8, fine_window=1024, **kw))
    assert len(chunks) == 1 and chunks[0].final
    one = generate(models, TEXT, seed=4, **kw)
    np.testing.assert_array_equal(chunks[0].take.fine.codes, one.fine.codes)
    np.testing.assert_allclose(chunks[0].take.audio.samples, one.audio.samples, atol=1e-6)
