"""Voice rights records: validation with reasons, voice origins for labels, round trip through a voice .npz."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest

from bark_core import BarkError, Voice, load_voice
from bark_core.rights import (
    RightsError,
    RightsRecord,
    audio_voice_source,
    require_rights_for_audio_voice,
    voice_origin,
    voice_rights,
)


def _arrays(n: int = 40, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"semantic": rng.integers(0, 10_000, n), "coarse": rng.integers(0, 1024, (2, int(n * 1.5))),
            "fine": rng.integers(0, 1024, (8, int(n * 1.5)))}


def _record() -> RightsRecord:
    return RightsRecord(who="Jane Doe", right="written consent", when="2024-05-01",
                        evidence="signed release form #12", note="podcast use only")


def test_valid_record_normalises_and_round_trips_as_plain_json():
    rec = RightsRecord(who="  Jane Doe ", right=" own voice ", when=date(2024, 5, 1), evidence="  ")
    assert (rec.who, rec.right, rec.when, rec.evidence) == ("Jane Doe", "own voice", "2024-05-01", None)
    data = _record().to_dict()
    assert json.loads(json.dumps(data)) == data and data["schema"] == "bark_core.rights/1"
    assert RightsRecord.from_dict(data) == _record()
    assert RightsRecord.from_dict(json.loads(json.dumps(data))) == _record()
    assert RightsRecord(who="A", right="licensed", when="2024-05-01T10:30:00Z").when.startswith("2024-05-01T10:30")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"who": "", "right": "written consent", "when": "2024-05-01"}, "needs who.*consent"),
        ({"who": "Jane", "right": " ", "when": "2024-05-01"}, "needs right.*cloned voice needs the speaker's consent"),
        ({"who": "Jane", "right": "licensed", "when": ""}, "needs when"),
        ({"who": "Jane", "right": "licensed", "when": "last spring"}, "not a date"),
        ({"who": "Jane", "right": "licensed", "when": (date.today() + timedelta(days=3)).isoformat()}, "future"),
        ({"who": "Jane", "right": "licensed", "when": "2024-05-01", "evidence": 12}, "evidence must be text"),
    ],
)
def test_invalid_records_say_why(kwargs, match):
    with pytest.raises(RightsError, match=match) as err:
        RightsRecord(**kwargs)
    assert isinstance(err.value, BarkError)


def test_require_rights_for_audio_voice():
    for missing in (None, {}):
        with pytest.raises(RightsError, match="cloned voice needs the speaker's consent") as err:
            require_rights_for_audio_voice(missing)
        assert "RightsRecord(who=" in str(err.value)
    assert require_rights_for_audio_voice(_record().to_dict()) == _record()
    assert require_rights_for_audio_voice(_record()) == _record()
    with pytest.raises(RightsError, match="needs who"):
        require_rights_for_audio_voice({"right": "own voice", "when": "2024-01-01"})
    with pytest.raises(RightsError, match="must be a mapping"):
        require_rights_for_audio_voice("Jane said yes")  # type: ignore[arg-type]


def test_audio_voice_round_trips_its_rights_through_npz(tmp_path):
    source = audio_voice_source(_record(), file="/home/me/recordings/jane.wav", sha256="ab" * 32)
    voice = Voice(**_arrays(), name="jane", source=source)
    path = voice.save(tmp_path / "jane.npz")
    loaded = load_voice(str(path))
    assert voice_rights(loaded) == _record()
    origin = voice_origin(loaded)
    assert origin["kind"] == "audio" and origin["rights"] == _record().to_dict()
    assert origin["file"] == "jane.wav" and origin["voice_id"] == voice.id  # file name only, no local path
    assert json.loads(json.dumps(origin)) == origin
    # Suno's loader reads the file as before: plain arrays, no pickle, the three prompt keys
    with np.load(path, allow_pickle=False) as data:
        assert {"semantic_prompt", "coarse_prompt", "fine_prompt"} <= set(data.files)
        assert data["coarse_prompt"].shape == (2, 60)


def test_audio_voice_without_rights_is_refused():
    with pytest.raises(RightsError, match="needs a rights record"):
        audio_voice_source(None, file="x.wav")
    voice = Voice(**_arrays(), name="anon", source={"kind": "audio", "file": "x.wav"})
    with pytest.raises(RightsError, match="carries no rights record.*consent"):
        voice_origin(voice)
    damaged = Voice(**_arrays(), name="anon", source={"kind": "audio", "rights": {"who": "Jane"}})
    with pytest.raises(RightsError, match="needs right"):
        voice_origin(damaged)


def test_voice_origin_of_every_kind(tmp_path):
    assert voice_origin(None) == {"kind": "none"}
    preset = Voice(**_arrays(), name="v2/en_speaker_6", source={"kind": "preset", "preset": "v2/en_speaker_6",
                                                                "repo": "suno/bark", "path": "/secret/x.npz"})
    assert voice_origin(preset) == {"kind": "preset", "name": "v2/en_speaker_6", "voice_id": preset.id,
                                    "preset": "v2/en_speaker_6", "repo": "suno/bark"}
    generated = Voice(**_arrays(), name="narrator", source={"kind": "generated", "lineage": ["a1", "b2"], "seed": 7})
    assert voice_origin(generated)["lineage"] == ["a1", "b2"] and voice_origin(generated)["seed"] == 7
    memory = load_voice({"semantic_prompt": _arrays()["semantic"], "coarse_prompt": _arrays()["coarse"],
                         "fine_prompt": _arrays()["fine"]})
    assert voice_origin(memory)["kind"] == "memory"
    plain = tmp_path / "plain.npz"
    np.savez(plain, semantic_prompt=_arrays()["semantic"], coarse_prompt=_arrays()["coarse"],
             fine_prompt=_arrays()["fine"])
    assert voice_origin(load_voice(str(plain))) == {"kind": "file", "name": "plain", "voice_id":
                                                    load_voice(str(plain)).id, "file": "plain.npz"}
    odd = Voice(**_arrays(), name="odd", source={"kind": "telepathy"})
    assert voice_origin(odd)["kind"] == "unknown" and voice_origin(odd)["source_kind"] == "telepathy"
    # a generated voice saved and reloaded keeps where it originally came from
    loaded = load_voice(str(generated.save(tmp_path / "narrator.npz")))
    assert voice_origin(loaded)["kind"] == "generated" and voice_rights(loaded) is None


def test_suno_loader_reads_a_voice_with_rights(tmp_path, suno):
    """Suno's own loader and validators accept the file; the extra JSON key does not disturb them."""
    arrays = _arrays()
    path = Voice(**arrays, name="jane", source=audio_voice_source(_record())).save(tmp_path / "jane.npz")
    prompt = suno._load_history_prompt(str(path))
    np.testing.assert_array_equal(prompt["semantic_prompt"], arrays["semantic"])
    np.testing.assert_array_equal(prompt["fine_prompt"], arrays["fine"])
