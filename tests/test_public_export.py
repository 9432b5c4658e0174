"""Public export needs an approved take; the label carries review, QC summary and voice rights."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from bark_core import Audio, Provenance, generate, voice_from_audio
from bark_core.label import save_wav
from bark_core.label.export import export_audio
from bark_core.label.metadata import read_label
from bark_core.label.review import NotApprovedError, ReviewStore, approve, reject
from bark_core.quality import check

SEM = dict(allow_early_stop=False, max_gen_duration_s=1.0)


@pytest.fixture()
def store(tmp_path):
    return ReviewStore(tmp_path / "reviews")


def test_public_export_refuses_unreviewed_and_rejected_takes(tiny_models, tmp_path, store):
    take = generate(tiny_models, "Publish me.", seed=1, **SEM)
    with pytest.raises(NotApprovedError, match="unreviewed|not been reviewed|review"):
        export_audio(take.audio, tmp_path / "a.wav", public=True, review_store=store)
    reject(take.audio, "Sam", "robotic", store=store)
    with pytest.raises(NotApprovedError, match="rejected by Sam"):
        export_audio(take.audio, tmp_path / "a.wav", public=True, review_store=store)
    assert not (tmp_path / "a.wav").exists()
    approve(take.audio, "Sam", "fine now", store=store)
    report = check(take.audio, text="Publish me.")
    out = export_audio(take.audio, tmp_path / "a.flac", public=True, review_store=store, quality=report,
                       **take.label_meta())
    tags = read_label(out)
    assert tags["review"]["human_review"] == "approved" and tags["review"]["reviewed_by"] == "Sam"
    assert tags["qc"]["passed"] == report.passed
    # an independent reader sees the same JSON
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(out)], capture_output=True,
                           text=True, check=True)
    assert "approved" in json.dumps(json.loads(probe.stdout))


def test_cloned_voice_rights_reach_every_take_label(tiny_models, tmp_path, store):
    t = np.arange(24000) / 24000
    ref = Audio(samples=(0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32), provenance=Provenance(stage="user"))
    voice = voice_from_audio(tiny_models, ref, rights={"who": "Ada Example", "right": "written consent",
                                                       "when": "2026-11-01"})
    take = generate(tiny_models, "Cloned.", voice, seed=2, **SEM)
    assert take.audio.provenance.extra["voice_origin"]["rights"]["who"] == "Ada Example"
    tags = read_label(export_audio(take.audio, tmp_path / "c.wav", review_store=store))
    assert tags["voice_origin"]["kind"] == "audio" and tags["voice_origin"]["rights"]["right"] == "written consent"
    assert tags["review"]["human_review"] == "unreviewed"


def test_review_from_the_cli_on_a_labelled_file_clears_the_take(tiny_models, tmp_path, capsys):
    from bark_core.cli import main

    store = tmp_path / "rev"
    take = generate(tiny_models, "Review me from the shell.", seed=3, **SEM)
    exported = export_audio(take.audio, tmp_path / "t.mp3", review_store=ReviewStore(store))
    assert main(["review", "show", str(exported), "--store", str(store)]) == 1
    assert "unreviewed" in capsys.readouterr().out
    assert main(["review", "approve", str(exported), "--store", str(store)]) == 2  # no reviewer named
    assert "--reviewer" in capsys.readouterr().err
    assert main(["review", "approve", str(exported), "--reviewer", "Sam", "--note", "clean", "--store",
                 str(store)]) == 0
    assert "approved by Sam" in capsys.readouterr().out
    # the decision applies to the take itself: a public export of it now goes through
    out = export_audio(take.audio, tmp_path / "pub.wav", public=True, review_store=ReviewStore(store))
    assert read_label(out)["review"]["reviewed_by"] == "Sam"
    plain = tmp_path / "plain.wav"
    save_wav(take.audio, plain, label=False)
    assert main(["review", "show", str(plain), "--store", str(store)]) == 2
    assert "no bark_core label" in capsys.readouterr().err


def test_every_export_carries_a_qc_summary_unless_turned_off(tiny_models, tmp_path):
    take = generate(tiny_models, "Auto check.", seed=6, **SEM)
    tags = read_label(export_audio(take.audio, tmp_path / "a.wav", **take.label_meta()))
    assert tags["qc"]["schema"] == "bark_core.quality/1" and tags["qc"]["passed"] is False  # untrained noise
    assert "not_speech" in tags["qc"]["fail"]
    assert "qc" not in read_label(export_audio(take.audio, tmp_path / "b.wav", quality=None))
