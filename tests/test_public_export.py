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


def test_label_names_every_stages_voice_and_seed_and_every_voices_rights(tiny_models, tmp_path):
    """Semantic with a preset, coarse and fine re-voiced with a cloned voice: the file says so, rights included."""
    from bark_core import Take, Voice, decode, generate_coarse, generate_fine, generate_semantic
    from bark_core.rights import RightsRecord, audio_voice_source

    rng = np.random.default_rng(0)
    rights = RightsRecord(who="Jane Doe", right="written consent", when="2024-05-01", evidence="form #12")
    jane = Voice(semantic=rng.integers(0, 10_000, 40), coarse=rng.integers(0, 1024, (2, 60)),
                 fine=rng.integers(0, 1024, (8, 60)), name="jane", source=audio_voice_source(rights))
    sem = generate_semantic(tiny_models, "Two voices.", "v2/en_speaker_6", seed=11, **SEM)
    coarse = generate_coarse(tiny_models, sem, jane, seed=12)
    fine = generate_fine(tiny_models, coarse, jane, seed=13)
    take = Take(semantic=sem, coarse=coarse, fine=fine, audio=decode(tiny_models, fine))
    label = read_label(export_audio(take.audio, tmp_path / "two.flac", **take.label_meta()))
    assert label["voice"] == f"semantic=v2/en_speaker_6, coarse={jane.label}, fine={jane.label}"
    assert label["stages"] == {"semantic": {"voice": "v2/en_speaker_6", "seed": 11},
                               "coarse": {"voice": jane.label, "seed": 12}, "fine": {"voice": jane.label, "seed": 13}}
    origins = {o["kind"]: o for o in label["voice_origins"]}
    assert set(origins) == {"preset", "audio"} and len(label["voice_origins"]) == 2
    assert origins["preset"]["preset"] == "v2/en_speaker_6" and origins["preset"]["stages"] == ["semantic"]
    assert origins["audio"]["stages"] == ["coarse", "fine"] and origins["audio"]["rights"] == rights.to_dict()
    # the other way round (cloned voice only at semantic): its rights still reach the label
    sem2 = generate_semantic(tiny_models, "Two voices.", jane, seed=21, **SEM)
    coarse2 = generate_coarse(tiny_models, sem2, "v2/en_speaker_6", seed=22)
    fine2 = generate_fine(tiny_models, coarse2, "v2/en_speaker_6", seed=23)
    take2 = Take(semantic=sem2, coarse=coarse2, fine=fine2, audio=decode(tiny_models, fine2))
    label2 = read_label(export_audio(take2.audio, tmp_path / "two.wav", **take2.label_meta()))
    assert [o["rights"]["who"] for o in label2["voice_origins"] if o["kind"] == "audio"] == ["Jane Doe"]
    assert label2["stages"]["semantic"] == {"voice": jane.label, "seed": 21}


def test_one_voice_take_keeps_a_plain_voice_name(tiny_models, tmp_path):
    take = generate(tiny_models, "One voice.", "v2/en_speaker_6", seed=3, **SEM)
    label = read_label(export_audio(take.audio, tmp_path / "one.wav", **take.label_meta(seed=3)))
    assert label["voice"] == "v2/en_speaker_6" and label["seed"] == 3
    assert {s["voice"] for s in label["stages"].values()} == {"v2/en_speaker_6"}
    assert [o["stages"] for o in label["voice_origins"]] == [["semantic", "coarse", "fine"]]
