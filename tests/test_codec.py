"""EnCodec wrapper: Suno's decode, encode with resampling, checkpoint files, and the torchaudio import shim."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from bark_core import constants as C
from bark_core.artifacts import Audio, FineCodes, Provenance
from bark_core.errors import ArtifactError, CheckpointError
from bark_core.models.codec import (
    HOP_LENGTH,
    decode,
    encode,
    hub_checkpoint_path,
    import_encodec,
    load_codec,
    random_codec,
    write_random_codec,
)

SEED = 3


@pytest.fixture(scope="module")
def codec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_codec(tmp_path_factory.mktemp("codec") / C.ENCODEC_CHECKPOINT_NAME, seed=SEED)


@pytest.fixture(scope="module")
def codec(codec_file: Path):
    return load_codec(checkpoint=codec_file)


def _fine(n_frames: int, seed: int = 0, **prov) -> FineCodes:
    codes = np.random.default_rng(seed).integers(0, C.CODEBOOK_SIZE, (C.N_FINE_CODEBOOKS, n_frames))
    return FineCodes(codes=codes, provenance=Provenance(stage="fine", seed=seed, **prov))


def _chirp(n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    return (0.5 * np.sin(2 * np.pi * (200 + 1500 * t) * t)).astype(np.float32)


# -- files ----------------------------------------------------------------------------------------


def test_written_checkpoint_loads_back_with_the_same_weights(codec_file: Path, codec) -> None:
    assert codec_file.stat().st_size > 50e6  # the real format: every tensor of the 24 kHz model in fp32
    state = torch.load(codec_file, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    expected = random_codec(SEED).state_dict()
    loaded = codec.state_dict()
    assert loaded.keys() == expected.keys() == state.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    assert not torch.equal(
        random_codec(SEED + 1).state_dict()["decoder.model.0.conv.conv.weight_v"],
        expected["decoder.model.0.conv.conv.weight_v"],
    )
    assert codec.bandwidth == C.ENCODEC_BANDWIDTH and not codec.training
    assert codec.bark_core_source == str(codec_file) and len(codec.bark_core_checksum) == 64


def test_random_codec_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(0)
    want = torch.rand(3)
    torch.manual_seed(0)
    random_codec(1)
    assert torch.equal(torch.rand(3), want)


def test_bad_checkpoint_files_raise_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"No EnCodec checkpoint at .*nope\.th.*dl\.fbaipublicfiles"):
        load_codec(checkpoint=tmp_path / "nope.th")
    garbage = tmp_path / "garbage.th"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="Cannot read the EnCodec checkpoint"):
        load_codec(checkpoint=garbage)
    wrong = tmp_path / "wrong.th"
    torch.save({"encoder.bogus": torch.zeros(2)}, wrong)
    with pytest.raises(CheckpointError, match="does not fit the 24 kHz model"):
        load_codec(checkpoint=wrong)
    not_dict = tmp_path / "list.th"
    torch.save([torch.zeros(2)], not_dict)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_codec(checkpoint=not_dict)


class _Payload:
    def __reduce__(self):
        return (os.getcwd, ())


def test_checkpoint_with_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.th"
    torch.save({"x": _Payload()}, path)
    with pytest.raises(CheckpointError, match="Cannot read the EnCodec checkpoint"):
        load_codec(checkpoint=path)


def test_unreachable_pretrained_download_names_file_url_and_fix(tmp_path: Path, monkeypatch) -> None:
    # An empty torch hub dir, and a network that fails at once (no real download, no hang).
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    with pytest.raises(CheckpointError) as info:
        load_codec()
    msg = str(info.value)
    assert C.ENCODEC_CHECKPOINT_URL in msg and C.ENCODEC_CHECKPOINT_NAME in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg and "checkpoint=" in msg
    assert hub_checkpoint_path() == tmp_path / "torch" / "hub" / "checkpoints" / C.ENCODEC_CHECKPOINT_NAME


def test_pretrained_path_reads_the_hub_cache_without_network(tmp_path: Path, codec_file: Path, monkeypatch) -> None:
    """Once the file is in the torch hub cache, ``load_codec()`` works offline (torch.hub skips the download)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    cached = hub_checkpoint_path()
    cached.parent.mkdir(parents=True)
    os.symlink(codec_file, cached)
    model = load_codec()
    assert torch.equal(
        model.state_dict()["quantizer.vq.layers.0._codebook.embed"],
        random_codec(SEED).state_dict()["quantizer.vq.layers.0._codebook.embed"],
    )
    assert model.bandwidth == C.ENCODEC_BANDWIDTH and not model.training
    assert model.bark_core_source == C.ENCODEC_CHECKPOINT_NAME and len(model.bark_core_checksum) == 64


# -- decode ---------------------------------------------------------------------------------------


def test_decode_shape_dtype_and_provenance(codec) -> None:
    fine = _fine(20, voice="v2/en_speaker_6")
    audio = decode(fine, codec)
    assert isinstance(audio, Audio)
    assert audio.samples.shape == (20 * HOP_LENGTH,) and audio.samples.dtype == np.float32
    assert audio.sample_rate == C.SAMPLE_RATE == 24_000
    assert np.all(np.isfinite(audio.samples)) and np.abs(audio.samples).max() > 0
    prov = audio.provenance
    assert prov.stage == "decode" and prov.parent == fine.id and prov.lineage == fine.lineage_ids()
    assert prov.voice == "v2/en_speaker_6" and prov.settings["bandwidth"] == C.ENCODEC_BANDWIDTH
    assert audio.parent is fine
    # deterministic
    np.testing.assert_array_equal(decode(fine, codec).samples, audio.samples)


def test_decode_is_sunos_codec_decode(codec, suno, monkeypatch) -> None:
    fine = _fine(12, seed=5)
    ours = decode(fine, codec).samples
    monkeypatch.setitem(suno.models, "codec", codec)
    with torch.no_grad():
        ref = suno.codec_decode(fine.codes)
    assert ref.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)
    # Suno runs it with autograd on; the kernels then round differently in the last bit or so
    np.testing.assert_allclose(ours, suno.codec_decode(fine.codes), rtol=0, atol=1e-6)


def test_decode_refuses_other_artifacts(codec) -> None:
    with pytest.raises(ArtifactError, match="decode stage takes fine"):
        decode(Audio(samples=np.zeros(10, np.float32), provenance=Provenance(stage="x")), codec)


# -- encode ---------------------------------------------------------------------------------------


def test_encode_audio_gives_8_codebooks_at_75_hz(codec) -> None:
    audio = Audio(samples=_chirp(4800, 24_000), provenance=Provenance(stage="input"))
    fine = encode(audio, codec)
    assert fine.codes.shape == (8, 15) and fine.codes.dtype == np.int64
    assert fine.codes.min() >= 0 and fine.codes.max() < C.CODEBOOK_SIZE
    prov = fine.provenance
    assert prov.stage == "encode" and prov.parent == audio.id and prov.lineage == audio.lineage_ids()
    assert prov.settings == {"bandwidth": C.ENCODEC_BANDWIDTH, "source_sample_rate": 24_000}
    assert fine.parent is audio
    # the codes decode again
    assert decode(fine, codec).samples.shape == (15 * HOP_LENGTH,)
    with pytest.raises(ArtifactError, match="contradicts"):
        encode(audio, codec, sample_rate=16_000)


def test_encode_resamples_and_mixes_down(codec) -> None:
    from scipy.signal import resample_poly

    x16 = _chirp(3200, 16_000)  # 0.2 s at 16 kHz
    fine16 = encode(x16, codec, sample_rate=16_000)
    assert fine16.codes.shape == (8, 15)  # 4800 samples at 24 kHz
    assert fine16.provenance.settings["source_sample_rate"] == 16_000 and fine16.provenance.parent is None
    direct = encode(resample_poly(x16, 3, 2).astype(np.float32), codec, sample_rate=24_000)
    np.testing.assert_array_equal(fine16.codes, direct.codes)

    x = _chirp(2400, 24_000)
    mono = encode(x, codec, sample_rate=24_000).codes
    np.testing.assert_array_equal(encode(np.stack([x, x]), codec, sample_rate=24_000).codes, mono)
    np.testing.assert_array_equal(encode(np.stack([x, x], axis=1), codec, sample_rate=24_000).codes, mono)
    pcm = np.round(x * 32768).clip(-32768, 32767).astype(np.int16)
    assert encode(pcm, codec, sample_rate=24_000).codes.shape == (8, 8)


def test_encode_input_errors(codec) -> None:
    with pytest.raises(ArtifactError, match="needs sample_rate"):
        encode(np.zeros(100, np.float32), codec)
    with pytest.raises(ArtifactError, match="empty"):
        encode(np.zeros(0, np.float32), codec, sample_rate=24_000)
    with pytest.raises(ArtifactError, match="NaN"):
        encode(np.full(100, np.nan, np.float32), codec, sample_rate=24_000)
    with pytest.raises(ArtifactError, match="1-D"):
        encode(np.zeros((2, 2, 100), np.float32), codec, sample_rate=24_000)
    with pytest.raises(ArtifactError, match="Audio or a numpy array"):
        encode([0.0, 0.1], codec, sample_rate=24_000)  # type: ignore[arg-type]


# -- importing encodec when torchaudio is broken or missing ------------------------------------------


def _run(code: str, tmp_path: Path, packages: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with fake top-level packages shadowing the installed ones."""
    fake = tmp_path / "fake"
    for name, init in packages.items():
        (fake / name).mkdir(parents=True)
        (fake / name / "__init__.py").write_text(textwrap.dedent(init))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )


BROKEN_TORCHAUDIO = 'raise OSError("Could not load this library: _torchaudio.abi3.so (fake)")\n'

CHECK_SHIM = """
    import sys
    from bark_core.models.codec import import_encodec
    enc = import_encodec()
    assert enc.EncodecModel.encodec_model_24khz and import_encodec() is enc
    assert sys.modules.get("torchaudio", "absent") == BEFORE, sys.modules.get("torchaudio")
    try:
        import torchaudio
    except EXPECTED as exc:
        print("torchaudio still fails:", type(exc).__name__, exc)
    else:
        raise SystemExit("import torchaudio should still fail")
    try:
        enc.utils.torchaudio.load
    except ImportError as exc:
        print("placeholder says:", exc)
    else:
        raise SystemExit("placeholder should explain")
"""


def test_import_encodec_with_broken_torchaudio(tmp_path: Path) -> None:
    code = 'BEFORE, EXPECTED = "absent", OSError\n' + textwrap.dedent(CHECK_SHIM)
    proc = _run(code, tmp_path, {"torchaudio": BROKEN_TORCHAUDIO})
    assert proc.returncode == 0, proc.stderr
    assert "torchaudio still fails: OSError Could not load this library" in proc.stdout
    assert "placeholder says: torchaudio.load is unavailable" in proc.stdout and "(fake)" in proc.stdout


def test_import_encodec_with_torchaudio_absent(tmp_path: Path) -> None:
    code = 'import sys\nsys.modules["torchaudio"] = None\nBEFORE, EXPECTED = None, ModuleNotFoundError\n'
    proc = _run(code + textwrap.dedent(CHECK_SHIM), tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert "torchaudio still fails: ModuleNotFoundError" in proc.stdout


@pytest.mark.parametrize("torchaudio_init", [BROKEN_TORCHAUDIO, "# a working torchaudio\n"])
def test_import_encodec_lets_real_encodec_errors_through(tmp_path: Path, torchaudio_init: str) -> None:
    code = """
        import sys
        from bark_core.models.codec import import_encodec
        try:
            import_encodec()
        except ImportError as exc:
            assert not any(n == "encodec" or n.startswith("encodec.") for n in sys.modules), "half-imported encodec"
            print("propagated:", type(exc).__name__, exc)
        else:
            raise SystemExit("the broken encodec should not import")
    """
    broken_encodec = 'raise ImportError("boom: encodec needs something else")\n'
    proc = _run(code, tmp_path, {"torchaudio": torchaudio_init, "encodec": broken_encodec})
    assert proc.returncode == 0, proc.stderr
    assert "propagated: ImportError boom: encodec needs something else" in proc.stdout


def test_import_encodec_in_process() -> None:
    enc = import_encodec()
    assert enc is sys.modules["encodec"] and hasattr(enc, "EncodecModel")
