"""A voice from a recording: semantic tokens from HuBERT + quantizer equal the reference's, files are loaded
safely, the voice drives all three stages with its rights record in the label, and bad input is refused.

The reference forward pass (gitmylo/bark-voice-cloning-HuBERT-quantizer: torchaudio resampling to 16 kHz,
fairseq HuBERT base with ``output_layer=9``, the LSTM quantizer, argmax) is re-implemented below from its
published math in float64, on the weights files the tests write in the real formats: a tiny HuBERT saved
by transformers' ``save_pretrained`` and a quantizer state dict in the reference's exact layout.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import tracemalloc
import wave
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bark_core import (
    Audio,
    BarkModels,
    CheckpointError,
    Provenance,
    RecordingError,
    RecordingWarning,
    RightsError,
    generate,
    generate_semantic,
    load_voice,
    semantic_from_audio,
    voice_from_audio,
)
from bark_core.audio_io import AudioFileError, AudioTooLongError, read_audio
from bark_core.cloning import load_recording, select_prompt
from bark_core.errors import ExtraMissingError
from bark_core.label.export import export_audio
from bark_core.label.metadata import label, read_label
from bark_core.models.hubert import load_hubert, sinc_resample
from bark_core.models.quantizer import KNOWN_QUANTIZERS, load_quantizer

RIGHTS = {"who": "Ada Example", "right": "written consent", "when": "2024-05-01", "evidence": "form 12"}
SEM = dict(allow_early_stop=False, max_gen_duration_s=0.6)
TEXT = "Hello there. This is my own voice, recorded for a test of voice cloning."
needs_tools = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("ffmpeg")),
                                 reason="espeak-ng and ffmpeg are needed for speech recordings")


# ---- files in the real formats, written here --------------------------------------------------------

@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory) -> Path:
    """A tiny random-weight HuBERT (HuBERT base's framing, 10 layers) saved by transformers itself."""
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(hidden_size=32, num_hidden_layers=10, num_attention_heads=4, intermediate_size=48,
                       conv_dim=(24,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    torch.manual_seed(11)
    folder = tmp_path_factory.mktemp("hubert")
    HubertModel(cfg).save_pretrained(folder)
    return folder


def write_reference_quantizer(path: Path, *, version: int, seed: int, input_size: int = 32,
                              hidden: int = 24) -> Path:
    """The reference's CustomTokenizer layout built from plain torch modules: ``torch.save`` of the state dict,
    then (newer files) a ``<stem>/.info`` zip entry."""
    torch.manual_seed(seed)
    net = torch.nn.Module()
    net.lstm = torch.nn.LSTM(input_size, hidden, 2, batch_first=True)
    width = hidden
    if version == 1:
        net.intermediate = torch.nn.Linear(hidden, 40)
        width = 40
    net.fc = torch.nn.Linear(width, 10_000)
    with torch.no_grad():  # wider than torch's default init, so the best token changes from frame to frame
        for p in net.parameters():
            p.normal_(0.0, 1.0)
    torch.save(net.state_dict(), path)
    if version == 1:
        info = {"input_size": input_size, "hidden_size": hidden, "output_size": 10_000, "version": 1}
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(f"{path.stem}/.info", json.dumps(info))
    return path


@pytest.fixture(scope="module")
def quantizers(tmp_path_factory) -> dict[int, Path]:
    d = tmp_path_factory.mktemp("quant")
    return {0: write_reference_quantizer(d / "q0.pth", version=0, seed=3),
            1: write_reference_quantizer(d / "q1.pth", version=1, seed=4)}


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> dict[int, Path]:
    """espeak-ng speech (22.05 kHz) and ffmpeg's 16, 24 and 44.1 kHz versions of it, 16-bit WAV."""
    if not (shutil.which("espeak-ng") and shutil.which("ffmpeg")):
        pytest.skip("espeak-ng and ffmpeg are needed for speech recordings")
    d = tmp_path_factory.mktemp("speech")
    src = d / "speech_22050.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(src), TEXT], check=True, capture_output=True)
    out = {22050: src}
    for rate in (16000, 24000, 44100):
        out[rate] = d / f"speech_{rate}.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-ar", str(rate), "-c:a", "pcm_s16le",
                        str(out[rate])], check=True)
    return out


# ---- the reference forward pass, from its published math (float64) ----------------------------------

def ref_resample(x: np.ndarray, rate_in: int, rate_out: int, zeros: int = 6, rolloff: float = 0.99) -> np.ndarray:
    """Band-limited interpolation: output j is sum_i x[i] * h((i - j*L/M) * c / L) * c / L, where L/M is the
    reduced rate ratio, c = rolloff * min(L, M), and h a sinc with a Hann window over +-zeros zero crossings."""
    if rate_in == rate_out:
        return x.astype(np.float64)
    g = math.gcd(rate_in, rate_out)
    L, M = rate_in // g, rate_out // g
    c = rolloff * min(L, M)
    n_out = math.ceil(M * len(x) / L)
    centre = np.arange(n_out) * L / M
    span = zeros * L / c
    first = np.floor(centre - span).astype(np.int64)
    idx = first[:, None] + np.arange(int(math.ceil(2 * span)) + 2)[None, :]
    t = c * (idx - centre[:, None]) / L
    h = np.where(np.abs(t) < zeros, np.sinc(t) * np.cos(np.pi * t / (2 * zeros)) ** 2, 0.0)
    xs = np.where((idx >= 0) & (idx < len(x)), np.asarray(x, np.float64)[np.clip(idx, 0, len(x) - 1)], 0.0)
    return np.sum(xs * h, axis=1) * c / L


def ref_hubert(sd: dict[str, torch.Tensor], cfg: dict, wave16: np.ndarray, layer: int = 9) -> torch.Tensor:
    """HuBERT base (post-norm, as fairseq's hubert_base_ls960) up to the output of block ``layer``."""
    sd = {k: v.double() for k, v in sd.items()}
    eps = cfg["layer_norm_eps"]
    x = torch.from_numpy(wave16)[None, None]
    for i, stride in enumerate(cfg["conv_stride"]):
        x = F.conv1d(x, sd[f"feature_extractor.conv_layers.{i}.conv.weight"], stride=stride)
        if i == 0:  # group norm with one group per channel, over time
            x = F.group_norm(x, x.shape[1], sd["feature_extractor.conv_layers.0.layer_norm.weight"],
                             sd["feature_extractor.conv_layers.0.layer_norm.bias"], eps=1e-5)
        x = F.gelu(x)
    h = x[0].T
    h = F.layer_norm(h, h.shape[-1:], sd["feature_projection.layer_norm.weight"],
                     sd["feature_projection.layer_norm.bias"], eps)
    h = h @ sd["feature_projection.projection.weight"].T + sd["feature_projection.projection.bias"]
    g = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original0"]
    v = sd["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    w = g * v / v.norm(dim=(0, 1), keepdim=True)  # weight norm over everything but the kernel axis
    k = w.shape[-1]
    p = F.conv1d(h.T[None], w, sd["encoder.pos_conv_embed.conv.bias"], padding=k // 2,
                 groups=cfg["num_conv_pos_embedding_groups"])[0]
    if k % 2 == 0:
        p = p[:, :-1]
    h = F.layer_norm(h + F.gelu(p).T, h.shape[-1:], sd["encoder.layer_norm.weight"], sd["encoder.layer_norm.bias"],
                     eps)
    heads = cfg["num_attention_heads"]
    for n in range(layer):
        pre = f"encoder.layers.{n}."

        def lin(name: str, z: torch.Tensor, pre: str = pre) -> torch.Tensor:
            return z @ sd[pre + name + ".weight"].T + sd[pre + name + ".bias"]

        q, kk, vv = (lin(f"attention.{m}_proj", h).reshape(len(h), heads, -1).transpose(0, 1) for m in "qkv")
        att = torch.softmax(q @ kk.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1) @ vv
        h = F.layer_norm(h + lin("attention.out_proj", att.transpose(0, 1).reshape(len(h), -1)), h.shape[-1:],
                         sd[pre + "layer_norm.weight"], sd[pre + "layer_norm.bias"], eps)
        ff = lin("feed_forward.output_dense", F.gelu(lin("feed_forward.intermediate_dense", h)))
        h = F.layer_norm(h + ff, h.shape[-1:], sd[pre + "final_layer_norm.weight"], sd[pre + "final_layer_norm.bias"],
                         eps)
    return h


def ref_quantize(sd: dict[str, torch.Tensor], feats: torch.Tensor) -> np.ndarray:
    """Two LSTM layers (gates i, f, g, o), the linear layer(s), log-softmax, argmax per frame."""
    sd = {k: v.double() for k, v in sd.items()}
    x = feats.double()
    for n in range(2):
        wih, whh, b = sd[f"lstm.weight_ih_l{n}"], sd[f"lstm.weight_hh_l{n}"], sd[f"lstm.bias_ih_l{n}"]
        b = b + sd[f"lstm.bias_hh_l{n}"]
        hid = whh.shape[1]
        h, c, out = torch.zeros(hid, dtype=x.dtype), torch.zeros(hid, dtype=x.dtype), []
        for xt in x @ wih.T:
            i, f, gg, o = (xt + whh @ h + b).split(hid)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        x = torch.stack(out)
    if "intermediate.weight" in sd:
        x = x @ sd["intermediate.weight"].T + sd["intermediate.bias"]
    logits = x @ sd["fc.weight"].T + sd["fc.bias"]
    return torch.log_softmax(logits, dim=-1).argmax(dim=-1).numpy()


# ---- 1. tokens equal the reference's ----------------------------------------------------------------

def test_resampling_equals_torchaudio_bit_for_bit():
    """Fixture made by tests/fixtures/make_torchaudio_resample.py with torchaudio's own resample."""
    ref = np.load(Path(__file__).parent / "fixtures" / "torchaudio_resample.npz")
    for rate in (16_000, 22_050, 24_000, 44_100, 48_000, 8_000):
        x = (np.random.default_rng(rate).standard_normal(int(rate * 0.05) + 7) * 0.3).astype(np.float32)
        ours = sinc_resample(torch.from_numpy(x), rate, 16_000).numpy()
        assert ours.dtype == np.float32 and np.array_equal(ours, ref[f"out_{rate}"]), rate
        # in float64 the same code is the formula above; in float32 its kernel is rounded as torchaudio's is
        ours64 = sinc_resample(torch.from_numpy(x.astype(np.float64)), rate, 16_000).numpy()
        assert np.allclose(ours64, ref_resample(x, rate, 16_000), rtol=0, atol=1e-10), rate


@needs_tools
def test_semantic_tokens_equal_the_reference_forward_pass(tmp_path, hubert_dir, quantizers, speech):
    from safetensors.torch import load_file

    sd = load_file(str(hubert_dir / "model.safetensors"))
    cfg = json.loads((hubert_dir / "config.json").read_text())
    models = BarkModels(tmp_path, device="cpu")
    for version, qpath in quantizers.items():
        qsd = torch.load(qpath, weights_only=True)
        for rate, path in speech.items():
            if version == 1 and rate != 44100:
                continue  # the version-1 layout once is enough
            samples, sr = read_audio(path)
            assert sr == rate
            sem = semantic_from_audio(models, samples, sample_rate=sr, quantizer=qpath, hubert=hubert_dir)
            wave16 = ref_resample(samples, sr, 16_000)
            feats = ref_hubert(sd, cfg, wave16)
            assert sem.n_frames == (len(wave16) - 400) // 320 + 1 == len(feats)  # 50 Hz framing
            ours = models.semantic_encoder(qpath, hubert_dir).features(samples, sr)
            assert torch.allclose(ours.double(), feats, atol=1e-4), (version, rate)
            expected = ref_quantize(qsd, feats)
            assert np.array_equal(sem.tokens, expected), (version, rate, int((sem.tokens != expected).sum()))
            assert len(np.unique(expected)) > 20  # a real comparison, not a constant
    s = sem.provenance.settings
    assert s["method"] == "hubert-quantizer" and s["hubert"]["layer"] == 9
    assert s["quantizer"]["file"] == "q1.pth" and s["quantizer"]["version"] == 1


def test_hubert_in_the_hub_layout_loads_through_the_offline_cache(tmp_path, hubert_dir, quantizers):
    """facebook/hubert-base-ls960 holds config.json and pytorch_model.bin with weight-norm tensors under their
    old names; the quantizer comes from GitMylo/bark-voice-cloning. Both found in the hub cache, offline."""
    from safetensors.torch import load_file

    commit = "0123456789abcdef0123456789abcdef01234567"
    sd = load_file(str(hubert_dir / "model.safetensors"))
    old = {k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                "weight_v"): v for k, v in sd.items()}
    for repo, files in (("facebook/hubert-base-ls960", {"config.json": hubert_dir / "config.json"}),
                        ("GitMylo/bark-voice-cloning", {"quantifier_hubert_base_ls960_14.pth": quantizers[0]})):
        root = tmp_path / ("models--" + repo.replace("/", "--"))
        snap = root / "snapshots" / commit
        snap.mkdir(parents=True)
        (root / "refs").mkdir()
        (root / "refs" / "main").write_text(commit)
        for name, src in files.items():
            shutil.copy(src, snap / name)
        if repo.startswith("facebook"):
            torch.save(old, snap / "pytorch_model.bin")
    models = BarkModels("suno", device="cpu", cache_dir=tmp_path, local_files_only=True)
    enc = models.semantic_encoder()
    assert enc.hubert.source == "facebook/hubert-base-ls960"
    assert enc.quantizer.source == "hub:GitMylo/bark-voice-cloning"
    assert enc.quantizer.language == "en" and enc.quantizer.name in KNOWN_QUANTIZERS
    x = np.sin(np.arange(24_000) / 24_000 * 2 * np.pi * 150).astype(np.float32) * 0.3
    direct = load_hubert(hubert_dir)(x, 24_000)
    assert torch.allclose(enc.features(x, 24_000), direct)  # old weight-norm names map onto the same weights
    with pytest.raises(CheckpointError, match="(?s)quantifier_V1_hubert_base_ls960_23.pth.*--quantizer"):
        models.semantic_encoder("quantifier_V1_hubert_base_ls960_23.pth")  # not in this cache: says how to fix


# ---- 2. a quantizer pickle that would run code is refused, and the code does not run ---------------

class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))  # unpickling would create the marker file


def test_a_quantizer_pickle_that_runs_code_is_refused(tmp_path, hubert_dir):
    evil = tmp_path / "quantifier_evil.pth"
    torch.save({"lstm.weight_ih_l0": torch.zeros(4, 2), "payload": _Payload(tmp_path / "ran.txt")}, evil)
    with pytest.raises(CheckpointError, match="Refusing to load.*references [a-z]+\\.open"):
        load_quantizer(evil)
    rights = {"who": "Ada", "right": "own voice", "when": "2024-01-01"}
    x = np.random.default_rng(0).standard_normal(24_000 * 2).astype(np.float32) * 0.1
    with pytest.raises(CheckpointError, match="Refusing"):
        voice_from_audio(BarkModels(tmp_path, device="cpu"), x, sample_rate=24_000, rights=rights, quantizer=evil,
                         hubert=hubert_dir)
    assert not (tmp_path / "ran.txt").exists()
    torch.load(evil, weights_only=False)  # the same file unpickled without the guard does run the code
    assert (tmp_path / "ran.txt").exists()


def test_quantizer_files_that_do_not_fit_are_refused(tmp_path, quantizers):
    bad = tmp_path / "wrong.pth"
    torch.save({"lstm.weight_ih_l0": torch.zeros(8, 4)}, bad)
    with pytest.raises(CheckpointError, match="not a HuBERT quantizer checkpoint"):
        load_quantizer(bad)
    lying = tmp_path / "lying.pth"
    shutil.copy(quantizers[0], lying)
    with zipfile.ZipFile(lying, "a") as zf:
        zf.writestr("q0/.info", json.dumps({"input_size": 768, "hidden_size": 1024, "output_size": 10000,
                                               "version": 0}))
    with pytest.raises(CheckpointError, match="damaged"):
        load_quantizer(lying)


# ---- 3. a cloned voice: .npz round trip, all three stages, rights in the label ---------------------

@needs_tools
def test_a_cloned_voice_drives_all_stages_and_its_rights_reach_the_label(tiny_models, tmp_path, speech):
    voice = voice_from_audio(tiny_models, speech[44100], rights=RIGHTS, name="ada")
    assert voice.semantic.size > 50 and not voice.partial
    assert voice.coarse.shape[1] == (3 * len(voice.semantic)) // 2 and np.array_equal(voice.fine[:2], voice.coarse)
    src = voice.source
    assert src["file"] == "speech_44100.wav" and src["semantic"]["quantizer"]["file"] == "quantizer_tiny_untrained.pth"
    back = load_voice(str(voice.save(tmp_path / "ada.npz")))
    for a, b in ((back.semantic, voice.semantic), (back.coarse, voice.coarse), (back.fine, voice.fine)):
        assert np.array_equal(a, b)
    assert back.source["rights"]["who"] == "Ada Example" and back.source["semantic"] == src["semantic"]
    take = generate(tiny_models, "A new line in a cloned voice.", back, seed=5, **SEM)
    assert take.audio.n_samples > 0
    # the semantic prompt reaches stage one: without it the same seed gives other tokens
    partial = load_voice(str(back.save(tmp_path / "p.npz")))
    partial.semantic = np.zeros(0, np.int64)
    other = generate_semantic(tiny_models, "A new line in a cloned voice.", partial, seed=5, **SEM)
    assert not np.array_equal(other.tokens, take.semantic.tokens)
    tags = read_label(export_audio(take.audio, tmp_path / "take.wav"))
    origin = tags["voice_origin"]
    assert origin["kind"] == "audio" and origin["rights"]["who"] == "Ada Example"
    assert origin["rights"]["evidence"] == "form 12" and origin["file"] == "speech_44100.wav"
    assert origin["semantic"]["quantizer"]["sha256"] == src["semantic"]["quantizer"]["sha256"]
    assert str(tmp_path) not in json.dumps(tags)  # no local folders in the label


def test_export_refuses_a_recorded_voice_without_rights(tiny_models, tmp_path):
    t = np.arange(24_000) / 24_000
    audio = Audio(samples=(0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32),
                  provenance=Provenance(stage="decode", extra={"voice_origin": {"kind": "audio", "name": "x"}}))
    with pytest.raises(RightsError, match="no rights record"):
        export_audio(audio, tmp_path / "x.wav")
    with pytest.raises(RightsError, match="no rights record"):
        label(audio)
    assert not (tmp_path / "x.wav").exists()


# ---- prompt selection ----------------------------------------------------------------------------

@needs_tools
def test_the_prompt_is_whole_phrases_without_the_silence(tiny_models, speech):
    samples, sr = read_audio(speech[16000])
    gap = np.zeros(int(0.8 * sr), np.float32)
    lead = np.zeros(int(1.5 * sr), np.float32)
    rec = np.concatenate([lead, samples, gap, samples[: int(1.6 * sr)], gap, samples, lead])
    one = len(samples) / sr
    sel = select_prompt(rec, sr, max_s=one + 0.5)
    assert sel.whole_phrases and sel.trimmed and sel.end_s - sel.start_s <= one + 0.5
    assert 1.3 <= sel.start_s <= 1.5 and sel.end_s <= 1.5 + one + 0.15  # the first sentence, its silence trimmed
    voice = voice_from_audio(tiny_models, rec, sample_rate=sr, rights=RIGHTS, semantic="none", start_s=2.0,
                             max_seconds=30)
    lo, hi = voice.source["range_s"]
    assert lo >= 2.0 and hi <= len(rec) / sr - 1.3  # the range given, the trailing silence trimmed
    assert voice.source["selection"]["trimmed"]


@needs_tools
def test_recording_problems_come_as_warnings(tiny_models, speech):
    samples, sr = read_audio(speech[22050])
    loud = np.clip(samples * 30, -1, 1)
    noisy = samples + np.random.default_rng(1).standard_normal(len(samples)).astype(np.float32) * 0.2
    noise = np.random.default_rng(2).standard_normal(sr * 4).astype(np.float32) * 0.3
    for x, code in ((loud, "clipping"), (noisy, "low_snr|noise_floor|hiss"), (noise, "not_speech")):
        with pytest.warns(RecordingWarning, match=code):
            voice = voice_from_audio(tiny_models, x, sample_rate=sr, rights=RIGHTS)
        assert set(code.split("|")) & set(voice.source["recording_check"])


# ---- 4. bad input -----------------------------------------------------------------------------------

def test_bad_recordings_are_refused_with_a_clear_message(tiny_models, tmp_path):
    sr = 24_000
    for x, match in ((np.zeros(0, np.float32), "empty"), (np.full(int(0.2 * sr), 0.1, np.float32), "0.20 s, too short"),
                     (np.zeros(3 * sr, np.float32), "silent")):
        with pytest.raises(RecordingError, match=match):
            voice_from_audio(tiny_models, x, sample_rate=sr, rights=RIGHTS)
    text = tmp_path / "notes.wav"
    text.write_text("these are not audio samples\n" * 50)
    with pytest.raises(AudioFileError, match="cannot be decoded as audio"):
        voice_from_audio(tiny_models, text, rights=RIGHTS)
    with pytest.raises(RightsError, match="needs a rights record"):  # rights first: the file is not even opened
        voice_from_audio(tiny_models, tmp_path / "missing.wav", rights=None)
    with pytest.raises(RightsError, match="needs who"):
        voice_from_audio(tiny_models, text, rights={"right": "own voice", "when": "2024-01-01"})
    with pytest.raises(RecordingError, match="end_s=1 is not after start_s=2"):
        voice_from_audio(tiny_models, text, rights=RIGHTS, start_s=2, end_s=1)
    with pytest.raises(RecordingError, match="max_seconds=300: give a prompt length of up to 30 s"):
        voice_from_audio(tiny_models, np.ones(sr * 2, np.float32) * 0.1, sample_rate=sr, rights=RIGHTS,
                         max_seconds=300)


def _two_hour_wav(path: Path, speech_16k: Path, at_s: float) -> float:
    """A 2-hour 16 kHz WAV that takes no disk space (a sparse file) with real speech at ``at_s``."""
    rate, seconds = 16_000, 2 * 3600
    size = rate * seconds * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", size)
    with wave.open(str(speech_16k)) as w:
        pcm, n = w.readframes(w.getnframes()), w.getnframes()
    with open(path, "wb") as fh:
        fh.write(header)
        fh.seek(len(header) + int(at_s * rate) * 2)
        fh.write(pcm)
        fh.truncate(len(header) + size)
    return n / rate


@needs_tools
def test_a_two_hour_file_is_refused_whole_and_read_by_range_in_bounded_memory(tiny_models, tmp_path, speech):
    path = tmp_path / "interview.wav"
    dur = _two_hour_wav(path, speech[16000], at_s=3600.0)
    tracemalloc.start()
    try:
        with pytest.raises(AudioTooLongError, match="interview.wav \\(7200 s\\) is longer than 300 s.*start/end"):
            load_recording(path)
        _, peak_refused = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        rec = load_recording(path, start_s=3599.5, end_s=3600.5 + dur)
        _, peak_range = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_refused < 2_000_000 and peak_range < 10_000_000  # the file is 230 MB
    assert rec.offset_s == 3599.5 and rec.duration_s == 7200.0 and abs(rec.seconds - (dur + 1.0)) < 1e-3
    voice = voice_from_audio(tiny_models, path, rights=RIGHTS, start_s=3599.5, end_s=3600.5 + dur, semantic="none")
    lo, hi = voice.source["range_s"]
    assert 3599.8 <= lo and hi <= 3600.5 + dur and voice.source["duration_s"] == 7200.0


def test_without_transformers_the_error_names_the_extra(tmp_path, monkeypatch, quantizers, hubert_dir):
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)
    x = np.random.default_rng(0).standard_normal(24_000 * 2).astype(np.float32) * 0.1
    with pytest.raises(ExtraMissingError, match=r"bark-stages\[clone\].*semantic='none'"):
        voice_from_audio(BarkModels(tmp_path, device="cpu"), x, sample_rate=24_000, rights=RIGHTS,
                         quantizer=quantizers[0], hubert=hubert_dir)


# ---- surfaces: the command line ----------------------------------------------------------------------

@needs_tools
def test_cli_clone_writes_a_voice_with_its_rights(tiny_dir, tmp_path, speech, capsys):
    from bark_core.cli import main

    out = tmp_path / "voice.npz"
    base = ["clone", str(speech[24000]), "-o", str(out), "--models", str(tiny_dir), "--device", "cpu"]
    assert main(base) == 2
    assert "--rights-who" in capsys.readouterr().err and not out.exists()
    assert main(base + ["--rights-who", "Ada Example", "--rights-what", "own voice", "--rights-when", "2024-05-01",
                        "--start", "0.5", "--end", "4"]) == 0
    printed = capsys.readouterr().out
    assert "semantic tokens" in printed and "quantizer_tiny_untrained.pth" in printed and "Ada Example" in printed
    voice = load_voice(str(out))
    assert voice.source["rights"]["right"] == "own voice" and voice.semantic.size > 0
    assert 0.5 <= voice.source["range_s"][0] and voice.source["range_s"][1] <= 4.0
    evil = tmp_path / "evil.pth"
    torch.save({"x": _Payload(tmp_path / "ran.txt")}, evil)
    assert main(base + ["--rights-who", "A", "--rights-what", "own voice", "--quantizer", str(evil),
                        "--overwrite"]) == 2
    assert "Refusing to load" in capsys.readouterr().err and not (tmp_path / "ran.txt").exists()
    assert os.path.getsize(out) > 0
