"""Human review: explicit approve/reject, persistence by artifact id, lineage, the public-use gate."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bark_core import Audio, BarkError, Provenance, SemanticTokens, load_artifact
from bark_core import constants as C
from bark_core.label.review import (
    NotApprovedError,
    Review,
    ReviewError,
    ReviewStore,
    approve,
    reject,
    require_public_ok,
    review_history,
    review_metadata,
    review_state,
)


def _audio(seed: int = 0, *, parent: Audio | None = None, stage: str = "decode") -> Audio:
    rng = np.random.default_rng(seed)
    lineage = ("a" * 16, "b" * 16, "c" * 16) if parent is None else parent.lineage_ids()
    prov = Provenance(stage=stage, seed=seed, parent=None if parent is None else parent.id, lineage=lineage)
    return Audio(provenance=prov, parent=parent, samples=rng.normal(0, 0.1, 2400).astype(np.float32))


@pytest.fixture()
def store(tmp_path: Path) -> ReviewStore:
    return ReviewStore(tmp_path / "reviews")


def test_takes_start_unreviewed(store):
    audio = _audio()
    review = review_state(audio, store=store)
    assert review.state == "unreviewed" and review.reviewer is None and not review.approved
    assert review.applies_to == audio.id


def test_approve_records_who_when_and_persists(store, tmp_path):
    audio = _audio()
    review = approve(audio, "Ada Lovelace", "clear, no artefacts", store=store)
    assert review.approved and review.reviewer == "Ada Lovelace" and review.note == "clear, no artefacts"
    assert review.time.endswith("Z") and review.artifact_id == audio.id
    path = store.folder / f"{audio.id}.json"
    data = json.loads(path.read_text())
    assert data["schema"] == "bark_core.review/1" and data["state"] == "approved"
    assert data["lineage"] == list(audio.provenance.lineage)
    assert not list(store.folder.glob("*.part"))  # written atomically, nothing left behind
    # a new process (new store object) and a reloaded artifact see the same decision
    reloaded = load_artifact(audio.save(tmp_path / "take.npz"))
    assert reloaded is not audio and review_state(reloaded, store=ReviewStore(store.folder)).approved


def test_reject_then_approve_keeps_history_and_latest_wins(store):
    audio = _audio()
    reject(audio, "Grace", "hallucinated tail after the last word", store=store)
    assert review_state(audio, store=store).state == "rejected"
    approve(audio, "Grace", "tail trimmed, fine now", store=store)
    assert review_state(audio, store=store).state == "approved"
    assert [h["state"] for h in review_history(audio, store=store)] == ["rejected", "approved"]


def test_require_public_ok_gate(store):
    audio = _audio()
    with pytest.raises(NotApprovedError, match="has not been reviewed") as err:
        require_public_ok(audio, store=store)
    assert "approve(" in str(err.value) and err.value.review.state == "unreviewed"
    assert isinstance(err.value, BarkError)
    reject(audio, "Linus", "mumbled second sentence", store=store)
    with pytest.raises(NotApprovedError, match="rejected by Linus") as err:
        require_public_ok(audio, store=store)
    assert "mumbled second sentence" in str(err.value) and "Regenerate" in str(err.value)
    approve(audio, "Linus", store=store)
    ok = require_public_ok(audio, store=store)
    assert ok.approved and ok.reviewer == "Linus"


def test_derived_audio_inherits_nearest_decision_but_siblings_do_not(store):
    take = _audio(1)
    labelled = _audio(1, parent=take, stage="label")  # lineage holds the reviewed take's id
    sibling = _audio(2)  # same ancestors upstream, different audio
    approve(take, "Ada", store=store)
    inherited = review_state(labelled, store=store)
    assert inherited.approved and inherited.inherited and inherited.artifact_id == take.id
    assert inherited.applies_to == labelled.id
    assert review_state(sibling, store=store).state == "unreviewed"
    reject(labelled, "Ada", "watermark audible", store=store)  # the nearest decision wins
    assert review_state(labelled, store=store).state == "rejected"
    assert review_state(take, store=store).approved


def test_take_and_saved_npz_are_accepted(store, tmp_path):
    audio = _audio(3)
    take = SimpleNamespace(semantic=None, coarse=None, fine=None, audio=audio)
    approve(take, "Ada", store=store)
    path = audio.save(tmp_path / "a.npz")
    assert review_state(path, store=store).approved
    assert require_public_ok(str(path), store=store).approved


def test_review_of_a_real_tiny_take(tiny_models, store):
    from bark_core import generate

    take = generate(tiny_models, "Review me.", seed=4, max_gen_duration_s=0.2)
    approve(take, "Ada", store=store)
    again = generate(tiny_models, "Review me.", seed=4, max_gen_duration_s=0.2)  # same seed: same content id
    assert again.audio.id == take.audio.id and review_state(again, store=store).approved


def test_review_metadata_for_labels(store):
    audio = _audio(4)
    assert review_metadata(audio, store=store) == {"human_review": "unreviewed"}
    approve(audio, "Ada", "private remark", store=store)
    meta = review_metadata(audio, store=store)
    assert meta["human_review"] == "approved" and meta["reviewed_by"] == "Ada"
    assert meta["reviewed_artifact_id"] == audio.id and "review_note" not in meta
    assert review_metadata(audio, store=store, include_note=True)["review_note"] == "private remark"
    assert json.loads(json.dumps(meta)) == meta


def test_quality_summary_is_kept_with_the_decision(store):
    from bark_core.quality import check

    audio = _audio(5)
    report = check(audio, expect="any")
    review = approve(audio, "Ada", store=store, quality=report)
    assert review.quality == report.summary()
    assert review_state(audio, store=store).quality["schema"] == "bark_core.quality/1"


def test_bad_inputs_give_clear_errors(store, tmp_path):
    audio = _audio()
    with pytest.raises(ReviewError, match="reviewer's name"):
        approve(audio, "  ", store=store)
    sem = SemanticTokens(tokens=np.arange(5), provenance=Provenance(stage="semantic"))
    with pytest.raises(ReviewError, match="Decode it first"):
        approve(sem, "Ada", store=store)
    with pytest.raises(ReviewError, match="carries no bark_core label"):
        review_state(tmp_path / "take.wav", store=store)
    with pytest.raises(ReviewError, match="state must be one of"):
        Review(state="maybe")


def test_damaged_store_file_reads_as_unreviewed_and_can_be_rewritten(store):
    audio = _audio(6)
    store.folder.mkdir(parents=True)
    (store.folder / f"{audio.id}.json").write_text("{not json")
    assert review_state(audio, store=store).state == "unreviewed"
    approve(audio, "Ada", store=store)
    assert review_state(audio, store=store).approved


def test_in_memory_copy_is_used_when_the_store_has_none(tmp_path):
    audio = _audio(7)
    approve(audio, "Ada", store=tmp_path / "a")
    assert review_state(audio, store=tmp_path / "b").approved  # attached to the object
    assert review_state(load_artifact(audio.save(tmp_path / "x.npz")), store=tmp_path / "b").state == "unreviewed"


def test_default_folder_env_and_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("BARK_REVIEW_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert ReviewStore().folder == Path(C.default_cache_dir()) / "reviews"
    monkeypatch.setenv("BARK_REVIEW_DIR", str(tmp_path / "team-reviews"))
    audio = _audio(8)
    approve(audio, "Ada")
    assert (tmp_path / "team-reviews" / f"{audio.id}.json").is_file()
