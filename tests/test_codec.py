"""EnCodec: our port against Meta's ``encodec`` and transformers, Suno's decode, encode, checkpoint files."""

from __future__ import annotations

import math
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
    load_codec,
    random_codec,
    write_random_codec,
)
from bark_core.models.encodec_net import DECODE_CHUNK_FRAMES

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
    assert codec.bark_core_source == f"{codec_file.name} sha256:{codec.bark_core_checksum[:12]}"  # no local path
    assert len(codec.bark_core_checksum) == 64


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


# -- our port against the references ------------------------------------------------------------------


@pytest.fixture(scope="module")
def meta_codec(codec):
    """Meta's ``encodec`` model holding the very weights of ``codec`` (strict load: the key names match)."""
    import warnings

    from reference import reference_encodec

    encodec = reference_encodec()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # encodec uses torch's deprecated weight_norm
        ref = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    ref.load_state_dict(codec.state_dict(), strict=True)
    ref.set_target_bandwidth(C.ENCODEC_BANDWIDTH)
    return ref.eval()


@pytest.mark.parametrize("n_books", [8, 2, 32])
def test_decode_equals_metas_encodec(codec, meta_codec, n_books: int) -> None:
    codes = np.random.default_rng(n_books).integers(0, C.CODEBOOK_SIZE, (n_books, 37))
    ours = codec.decode_codes(torch.from_numpy(codes)[None]).detach()
    with torch.inference_mode():
        ref = meta_codec.decode([(torch.from_numpy(codes)[None], None)])
    assert ours.shape == ref.shape == (1, 1, 37 * HOP_LENGTH)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=0, atol=1e-6)
    assert ref.abs().max() > 1e-3  # not a silent comparison


def test_long_decode_runs_in_blocks_that_join_without_seams(codec, meta_codec) -> None:
    """Past 2 s the upsampling runs block by block (bounded memory); the take must still be Meta's
    whole-signal decode to rounding, joins included (1 frame of context would be off by 2e-4)."""
    frames = 2 * DECODE_CHUNK_FRAMES + 37
    codes = torch.from_numpy(np.random.default_rng(9).integers(0, C.CODEBOOK_SIZE, (1, C.N_FINE_CODEBOOKS, frames)))
    with torch.inference_mode():
        ours = codec.decode_codes(codes)
        whole = codec.decode_codes(codes, chunk_frames=None)
        ref = meta_codec.decode([(codes, None)])
    assert ours.shape == ref.shape == (1, 1, frames * HOP_LENGTH)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.numpy(), whole.numpy(), rtol=0, atol=1e-6)
    # one block or less is the whole-signal decode exactly
    short = codes[..., :DECODE_CHUNK_FRAMES]
    with torch.inference_mode():
        assert torch.equal(codec.decode_codes(short), codec.decode_codes(short, chunk_frames=None))
        with pytest.raises(ValueError, match="chunk_frames"):
            codec.decode_codes(codes, chunk_frames=0)


@pytest.mark.parametrize("n_samples", [1, 319, 320, 4321, 24_000])
def test_encode_equals_metas_encodec(codec, meta_codec, n_samples: int) -> None:
    wav = torch.from_numpy(_chirp(n_samples, 24_000) + np.random.default_rng(n_samples).normal(0, 0.05, n_samples)
                           .astype(np.float32))[None, None]
    with torch.inference_mode():
        ours = codec.encode_codes(wav)
        ref = meta_codec.encode(wav)
    assert len(ref) == 1 and ref[0][1] is None
    assert ours.shape == (1, 8, math.ceil(n_samples / HOP_LENGTH))
    assert torch.equal(ours, ref[0][0])
    assert len(torch.unique(ours)) > min(4, ours.numel() // 2)


def test_transformers_safetensors_load_and_match_transformers(tmp_path: Path) -> None:
    """facebook/encodec_24khz's layout: a transformers EncodecModel saved with save_pretrained loads into our port."""
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()
    from transformers import EncodecConfig, EncodecModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        hf = EncodecModel(EncodecConfig()).eval()
        with torch.no_grad():
            for layer in hf.quantizer.layers:
                layer.codebook.embed.copy_(torch.randn_like(layer.codebook.embed) * 0.03)
    hf.save_pretrained(tmp_path / "encodec_24khz")
    ours = load_codec(checkpoint=tmp_path / "encodec_24khz")  # the folder: model.safetensors inside
    assert ours.bark_core_source == f"model.safetensors sha256:{ours.bark_core_checksum[:12]}"  # no local path
    codes = torch.from_numpy(np.random.default_rng(2).integers(0, C.CODEBOOK_SIZE, (1, 8, 25)))
    with torch.inference_mode():
        ref = hf.decode(codes[None], [None]).audio_values
        np.testing.assert_allclose(ours.decode_codes(codes).numpy(), ref.numpy(), rtol=0, atol=1e-6)
        wav = torch.from_numpy(_chirp(4800, 24_000))[None, None]
        assert torch.equal(ours.encode_codes(wav), hf.encode(wav, bandwidth=C.ENCODEC_BANDWIDTH).audio_codes[0])


def test_runtime_needs_neither_encodec_nor_torchaudio(codec_file: Path) -> None:
    """With both packages made unimportable, bark_core still loads the codec file, decodes and encodes."""
    code = f"""
        import sys
        sys.modules["encodec"] = None
        sys.modules["torchaudio"] = None
        import numpy as np
        from bark_core import BarkModels  # the whole public API imports
        from bark_core.models.codec import load_codec, decode_codes
        codec = load_codec(checkpoint={str(codec_file)!r})
        audio = decode_codes(np.zeros((8, 3), dtype=np.int64), codec)
        codes = codec.encode_codes(__import__("torch").zeros(1, 1, 640))
        print("ok", audio.shape, tuple(codes.shape))
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok (960,) (1, 8, 2)" in proc.stdout
