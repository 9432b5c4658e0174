"""What the scorer hears, on espeak-ng speech as a stand-in for real voices: the transcript separates the right
sentence from a wrong one, and the speaker embedding separates two voices and groups one voice's lines."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bark_core import Audio, Provenance, read_audio
from bark_core.quality.speaker import SIMILARITY_MIN, speaker_embedding, speaker_similarity
from bark_core.script import LineScorer, RetakePolicy, SpeakerMemory

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng (Debian package) not installed")

RIGHT = "I would like a cup of coffee please."
WRONG = "Seven purple bicycles were parked near the station."
LINES = ["Hello, how are you today?", "The weather is very nice this morning.", "Thank you very much for your help."]


def _speak(folder: Path, name: str, text: str, voice: str = "en-us", rate: int = 120, gap: int = 8) -> Audio:
    path = folder / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-g", str(gap), "-w", str(path), text], check=True)
    samples, sr = read_audio(path)
    return Audio(samples=samples, sample_rate=sr, provenance=Provenance(stage="espeak"))


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    folder = tmp_path_factory.mktemp("espeak")
    return {v: [_speak(folder, f"{v}{i}", t, v, rate=140, gap=0) for i, t in enumerate(LINES)]
            for v in ("en-us+m3", "en-us+f4")}


def test_wer_separates_the_right_sentence_from_a_wrong_one(tmp_path):
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("jiwer")
    scorer = LineScorer(RetakePolicy(check_speaker=False, check_quality=False, asr_engine="auto"))
    right = scorer(_speak(tmp_path, "right", RIGHT), RIGHT)
    wrong = scorer(_speak(tmp_path, "wrong", WRONG), RIGHT)
    assert right.asr_engine and wrong.transcript is not None
    # pocketsphinx is approximate on synthetic speech: the right sentence still scores far better than a wrong one
    assert right.wer <= 0.6 and wrong.wer >= 0.9 and wrong.wer - right.wer >= 0.4, (right, wrong)
    assert right.checks["on_script"] and not wrong.checks["on_script"]
    assert "WER" in wrong.reasons[0] and right.penalty < wrong.penalty


@pytest.mark.parametrize("engine", ["resemblyzer", "mfcc"])
def test_speaker_similarity_separates_two_voices_and_groups_one(voices, engine):
    if engine == "resemblyzer":
        pytest.importorskip("resemblyzer", reason="resemblyzer (the script extra) not installed")
    emb = {v: [speaker_embedding(a.samples, a.sample_rate, engine) for a in takes] for v, takes in voices.items()}
    same = [speaker_similarity(a, b) for takes in emb.values() for a, b in itertools.combinations(takes, 2)]
    cross = [speaker_similarity(a, b) for a in emb["en-us+m3"] for b in emb["en-us+f4"]]
    limit = SIMILARITY_MIN[engine]
    assert min(same) >= limit > max(cross), (engine, same, cross)
    assert all(e.engine == engine for takes in emb.values() for e in takes)


def test_scorer_compares_with_the_voice_and_the_speakers_earlier_lines(voices):
    scorer = LineScorer(RetakePolicy(check_script=False, check_quality=False))
    m3, f4 = voices["en-us+m3"], voices["en-us+f4"]
    memory = SpeakerMemory(reference=scorer.embed(m3[0]), accepted=[scorer.embed(m3[1])])
    good = scorer(m3[2], LINES[2], memory)
    bad = scorer(f4[2], LINES[2], memory)
    assert good.checks["same_speaker"] and not bad.checks["same_speaker"]
    assert good.similarity_voice is not None and good.similarity_speaker is not None
    assert bad.similarity == min(bad.similarity_voice, bad.similarity_speaker)
    assert good.speaker_engine == scorer.speaker_engine and good.penalty < bad.penalty


def test_missing_speaker_model_falls_back_to_mfcc_with_a_note(monkeypatch, voices):
    import bark_core.quality.speaker as spk

    monkeypatch.setattr(spk, "resemblyzer_available", lambda: False)
    scorer = LineScorer(RetakePolicy(check_script=False, check_quality=False))
    assert scorer.speaker_engine == "mfcc" and "pip install" in scorer.describe()["speaker_note"]
    a = voices["en-us+m3"][0]
    assert speaker_embedding(a.samples, a.sample_rate).engine == "mfcc"


def test_cue_fit_and_quality_are_part_of_the_verdict(voices):
    scorer = LineScorer(RetakePolicy(check_script=False, check_speaker=False))
    take = voices["en-us+m3"][0]
    fits = scorer(take, LINES[0], None, cue_s=take.duration_s + 1.0)
    long = scorer(take, LINES[0], None, cue_s=take.duration_s / 2)
    assert fits.checks == {"clean": True, "fits_cue": True} and fits.passed
    assert not long.passed and long.fit == pytest.approx(2.0, rel=0.01) and long.penalty > fits.penalty
    silent = Audio(samples=np.zeros(24000, np.float32), provenance=Provenance(stage="test"))
    assert not scorer(silent, "hi").checks["clean"]
