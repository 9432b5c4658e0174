"""Acceptance figures of the watermark, measured on speech made with espeak-ng during the test run.

The corpus (60 speech clips of 3-14 s in several languages, voices, speeds and pitches, plus
music-like and noise-like signals) is built once per module; ffmpeg attacks run in a small thread
pool. ``benchmarks/watermark_bench.py`` imports the helpers below for its larger run.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, ellip, lfilter, sosfilt, sosfiltfilt
from scipy.special import ndtr

from bark_core.artifacts import Audio, Provenance
from bark_core.audio_io import read_audio, resample
from bark_core.errors import ArtifactError
from bark_core.label import save_wav
from bark_core.label import watermark as W
from bark_core.label import watermark_detect as D

SR = 24_000

TEXTS = {
    "en": [
        "The quick brown fox jumps over the lazy dog, and then it runs away into the forest.",
        "Please remember to bring your umbrella tomorrow, because the forecast says rain all afternoon.",
        "Numbers like three hundred and forty two are read aloud differently in each language.",
        "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
        "Our train leaves at half past seven, so we should meet at the station a little earlier.",
        "Synthetic voices are getting better every year, which is why we label what we make.",
    ],
    "de": [
        "Der schnelle braune Fuchs springt über den faulen Hund und läuft dann in den Wald.",
        "Morgen regnet es den ganzen Nachmittag, also vergiss deinen Regenschirm nicht.",
        "Die Bahn fährt um halb acht ab, wir treffen uns besser etwas früher am Bahnhof.",
    ],
    "fr": [
        "Le renard brun rapide saute par-dessus le chien paresseux et court vers la forêt.",
        "Demain il pleuvra tout l'après-midi, alors n'oublie pas ton parapluie.",
        "Le train part à sept heures et demie, retrouvons-nous un peu plus tôt à la gare.",
    ],
    "es": [
        "El rápido zorro marrón salta sobre el perro perezoso y corre hacia el bosque.",
        "Mañana lloverá toda la tarde, así que no olvides tu paraguas.",
        "El tren sale a las siete y media, mejor nos vemos un poco antes en la estación.",
    ],
    "it": [
        "La volpe marrone salta sopra il cane pigro e poi corre verso il bosco.",
        "Domani pioverà tutto il pomeriggio, quindi non dimenticare l'ombrello.",
    ],
    "pt": [
        "A rápida raposa marrom pula sobre o cão preguiçoso e corre para a floresta.",
        "Amanhã vai chover a tarde toda, então não esqueça o guarda-chuva.",
    ],
    "nl": ["De snelle bruine vos springt over de luie hond en rent dan het bos in."],
    "pl": ["Szybki brązowy lis przeskakuje nad leniwym psem i biegnie do lasu."],
}
VOICES = [
    ("en", "en"),
    ("en-us", "en"),
    ("en-gb-x-rp", "en"),
    ("de", "de"),
    ("fr-fr", "fr"),
    ("es", "es"),
    ("it", "it"),
    ("pt", "pt"),
    ("nl", "nl"),
    ("pl", "pl"),
]
VARIANTS = ["", "+f2", "+m3", "+f4", "+m7", "+klatt", "+croak", "+whisper", "+f1", "+m1"]

ATTACK_NAMES = ("mp3_64", "resample16", "crop60", "mp3_32", "aac_64", "noise20", "resample8", "lowpass4k", "noise10")
# The targets (2026-11-30 this corpus measures 100 % after every edit; the first release's
# 1e-6 threshold, -41 dB and flat carrier gave 94.1 % after 8 kHz resampling); the benchmark checks
# them on its separate set (README and docs/label.md).
REQUIRED_RATE = {"mp3_64": 0.99, "resample16": 0.99, "crop60": 0.99, "mp3_32": 0.98, "aac_64": 0.98, "noise20": 0.98,
                 "resample8": 0.98, "lowpass4k": 0.98, "noise10": 0.95}


def _espeak_clip(args: tuple[int, Path, int]) -> np.ndarray:
    """One espeak-ng clip, 3-14 s at 24 kHz; more sentences are added until it is long enough."""
    i, folder, seed = args
    rng = np.random.default_rng(seed * 100_003 + i)
    voice, lang = VOICES[i % len(VOICES)]
    variant = VARIANTS[(i // len(VOICES) + i) % len(VARIANTS)]
    speed, pitch = int(rng.integers(120, 231)), int(rng.integers(15, 86))
    texts = TEXTS[lang]
    n_sent = int(rng.integers(1, 4))
    wav = folder / f"speech{i:04d}.wav"
    for _ in range(6):
        text = " ".join(texts[int(k)] for k in rng.integers(0, len(texts), n_sent))
        subprocess.run(
            ["espeak-ng", "-v", voice + variant, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        samples, rate = read_audio(wav)
        if samples.size / rate >= 3.2:
            break
        n_sent += 1
    x = resample(samples, rate, SR)
    max_len = int(rng.uniform(9.0, 14.0) * SR)
    return x[:max_len].astype(np.float32)


def music_clip(rng: np.random.Generator, dur: float) -> np.ndarray:
    """Notes with harmonics, vibrato and decaying envelopes: tonal, sparse spectra."""
    n = int(dur * SR)
    y = np.zeros(n)
    for _ in range(int(dur * rng.uniform(1.5, 4.0))):
        f0 = 220.0 * 2 ** (int(rng.integers(-12, 19)) / 12)
        i0 = int(rng.uniform(0, dur - 0.3) * SR)
        i1 = min(n, i0 + int(rng.uniform(0.2, 1.5) * SR))
        tt = np.arange(i1 - i0) / SR
        env = np.minimum(1.0, tt / 0.01) * np.exp(-tt * rng.uniform(1.0, 6.0))
        vib = 1.0 + 0.003 * np.sin(2 * np.pi * 5.0 * tt)
        for k in range(int(rng.integers(1, 8))):
            y[i0:i1] += env * 0.6**k * np.sin(2 * np.pi * f0 * (k + 1) * vib * tt + rng.uniform(0, 2 * np.pi))
    y[: SR // 10] += 1e-3 * np.sin(2 * np.pi * 440.0 * np.arange(SR // 10) / SR)  # never fully silent
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)


def noise_clip(rng: np.random.Generator, dur: float, kind: str) -> np.ndarray:
    """Noise with gusty envelopes: brown (wind-like), pink, band-passed (rain-like) or white."""
    n = int(dur * SR)
    w = rng.standard_normal(n)
    if kind == "pink":
        b, a = [0.049922035, -0.095993537, 0.050612699, -0.004408786], [1, -2.494956002, 2.017265875, -0.5221894]
        x = lfilter(b, a, w)
    elif kind == "brown":
        x = np.cumsum(w)
        x -= np.convolve(x, np.ones(2400) / 2400, "same")
    elif kind == "rain":
        x = sosfilt(butter(4, [800, 6000], btype="band", fs=SR, output="sos"), w)
    else:
        x = w
    knots = int(dur * 3) + 2
    x = x * np.interp(np.arange(n), np.linspace(0, n, knots), rng.uniform(0.2, 1.0, knots))
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def make_corpus(folder: Path, n_speech: int = 60, n_music: int = 8, seed: int = 0, workers: int = 2) -> dict:
    """Clips by category; speech via espeak-ng, the rest synthesised."""
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(workers) as pool:
        speech = list(pool.map(_espeak_clip, [(i, folder, seed) for i in range(n_speech)]))
    rng = np.random.default_rng(seed + 1)
    music = [music_clip(rng, rng.uniform(3.0, 14.0)) for _ in range(n_music)]
    noise = [noise_clip(rng, d, k) for k, d in (("brown", 10.0), ("rain", 10.0), ("pink", 8.0), ("white", 6.0))]
    return {"speech": speech, "music": music, "noise": noise}


def _ffmpeg_roundtrip(y: np.ndarray, args: list[str], fmt: str) -> np.ndarray:
    base = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    enc = subprocess.run(
        [*base, "-f", "f32le", "-ar", str(SR), "-ac", "1", "-i", "pipe:0", *args, "-f", fmt, "pipe:1"],
        input=np.asarray(y, "<f4").tobytes(),
        capture_output=True,
        check=True,
    ).stdout
    dec = subprocess.run(
        [*base, "-i", "pipe:0", "-f", "f32le", "-ac", "1", "-ar", str(SR), "pipe:1"],
        input=enc,
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(dec, "<f4").copy()


def attack(name: str, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The edits the mark must survive; all at 24 kHz in and out."""
    if name == "mp3_64":
        return _ffmpeg_roundtrip(y, ["-c:a", "libmp3lame", "-b:a", "64k"], "mp3")
    if name == "mp3_32":
        return _ffmpeg_roundtrip(y, ["-c:a", "libmp3lame", "-b:a", "32k"], "mp3")
    if name == "aac_64":
        return _ffmpeg_roundtrip(y, ["-c:a", "aac", "-b:a", "64k"], "adts")
    if name == "resample16":
        return resample(resample(y, SR, 16_000), 16_000, SR).astype(np.float32)
    if name == "crop60":
        n = int(round(0.6 * y.size))
        start = int(rng.integers(0, y.size - n + 1))
        return y[start : start + n]
    if name in ("noise20", "noise10"):
        power = float(np.mean(np.asarray(y, np.float64) ** 2))
        snr_db = 20.0 if name == "noise20" else 10.0
        return (y + rng.standard_normal(y.size) * math.sqrt(power / 10 ** (snr_db / 10))).astype(np.float32)
    if name == "resample8":  # telephone band: nothing above 4 kHz comes back
        return resample(resample(y, SR, 8_000), 8_000, SR).astype(np.float32)
    if name == "lowpass4k":  # steep: 10th-order elliptic, 80 dB stop band, zero phase
        return sosfiltfilt(ellip(10, 0.1, 80, 4_000, fs=SR, output="sos"), y).astype(np.float32)
    raise ValueError(name)


def _attack_job(args: tuple[str, int, np.ndarray]) -> tuple[str, int, float]:
    name, idx, y = args
    rng = np.random.default_rng(1000 * idx + ATTACK_NAMES.index(name))
    return name, idx, W.detect((attack(name, y, rng), SR)).score


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is required for the watermark acceptance tests (apt-get install {tool}).")
    return make_corpus(tmp_path_factory.mktemp("wm_corpus"))


@pytest.fixture(scope="module")
def detectable(corpus: dict) -> list[np.ndarray]:
    """Clips the detection figures are measured on: all speech and music."""
    return corpus["speech"] + corpus["music"]


@pytest.fixture(scope="module")
def marked(detectable: list[np.ndarray]) -> list[np.ndarray]:
    return [W.embed_samples(x, SR) for x in detectable]


@pytest.fixture(scope="module")
def attacked_scores(marked: list[np.ndarray]) -> dict[str, np.ndarray]:
    jobs = [(name, i, y) for name in ATTACK_NAMES for i, y in enumerate(marked)]
    scores = {name: np.zeros(len(marked)) for name in ATTACK_NAMES}
    with ThreadPoolExecutor(3) as pool:
        for name, i, score in pool.map(_attack_job, jobs):
            scores[name][i] = score
    return scores


# --- acceptance figures ---------------------------------------------------------------------------


def test_corpus_matches_the_brief(corpus: dict) -> None:
    durations = [x.size / SR for x in corpus["speech"]]
    assert len(durations) >= 60
    assert min(durations) >= 3.0 and max(durations) <= 14.0
    assert len(corpus["music"]) >= 4 and len(corpus["noise"]) >= 3


def test_mark_is_40db_below_every_clip_and_adds_no_clipping(corpus: dict) -> None:
    loud = corpus["speech"][0] / np.max(np.abs(corpus["speech"][0])) * 0.999
    hard = np.clip(corpus["music"][0] * 3.0, -1.0, 1.0)  # already clipped: must not get worse
    worst = -math.inf
    for x in [*corpus["speech"], *corpus["music"], *corpus["noise"], loud, hard]:
        y = W.embed_samples(x, SR)
        ratio = W.mark_to_signal_db(x, y)
        worst = max(worst, ratio)
        assert ratio <= -40.0
        assert np.max(np.abs(y)) <= max(np.max(np.abs(x)), W.CLIP_GUARD) + 1e-6
        assert np.count_nonzero(np.abs(y) >= 0.999) <= np.count_nonzero(np.abs(x) >= 0.999)
    print(f"\nworst mark-to-signal ratio: {worst:.2f} dB")


def test_clean_marked_clips_are_all_detected(marked: list[np.ndarray]) -> None:
    scores = np.array([W.detect((y, SR)).score for y in marked])
    thr = W.DEFAULT_THRESHOLD
    print(f"\nclean: min score {scores.min():.1f}, median {np.median(scores):.1f} (threshold {thr:.2f})")
    assert np.all(scores > W.DEFAULT_THRESHOLD)


def test_structured_noise_is_detected_clean(corpus: dict) -> None:
    """Wind- and rain-like noise carries the mark; flat (white/pink) noise is a documented limit."""
    for x in corpus["noise"][:2]:
        assert W.detect((W.embed_samples(x, SR), SR)).detected


@pytest.mark.slow
@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_detection_survives_edits(attacked_scores: dict[str, np.ndarray], name: str) -> None:
    scores = attacked_scores[name]
    rate = float(np.mean(scores > W.DEFAULT_THRESHOLD))
    print(f"\n{name}: detected {rate:.1%} of {scores.size}, min score {scores.min():.1f}")
    assert rate >= REQUIRED_RATE[name]


def test_no_false_positives_in_600_null_trials(corpus: dict, marked: list[np.ndarray]) -> None:
    """Unmarked clips with the right key, and marked clips with eight wrong keys."""
    unmarked = [*corpus["speech"], *corpus["music"], *corpus["noise"]]
    scores = [W.detect((x, SR)).score for x in unmarked]
    wrong_keys = [f"someone else's key {k}" for k in range(7)] + [b"\x00\x01binary key"]
    for y in marked:
        prepared = W.prepare((y, SR))
        scores.extend(W.detect_prepared(prepared, key).score for key in wrong_keys)
    scores = np.array(scores)
    print(f"\nnull trials: {scores.size}, max score {scores.max():.2f} (threshold {W.DEFAULT_THRESHOLD:.2f})")
    assert scores.size >= 600
    assert np.all(scores <= W.DEFAULT_THRESHOLD)
    # each lag's statistic is standard normal, so the maximum over 16384 lags sits near 4
    assert 3.0 < np.median(scores) < 5.0
    # the combined near-lag / all-lag score keeps its promise at any threshold: P(score > t) <= PERIOD * Q(t)
    for t in (4.5, 5.0):
        bound = W.PERIOD * float(ndtr(-t))
        assert np.mean(scores > t) <= bound + 3 * math.sqrt(bound / scores.size), t


def test_the_clip_guard_keeps_the_whole_power_budget(corpus: dict) -> None:
    """Hard-clipped noisy speech (a third of the samples at full scale): no new clipping, no lost mark power."""
    rng = np.random.default_rng(11)
    x = corpus["speech"][8].astype(np.float64)
    noisy = x + rng.standard_normal(x.size) * math.sqrt(np.mean(x * x) / 30)
    clipped = np.clip(noisy / np.quantile(np.abs(noisy), 0.65), -1.0, 1.0).astype(np.float32)
    assert 0.30 <= np.mean(np.abs(clipped) >= 1.0) <= 0.40
    y = W.embed_samples(clipped, SR)
    strength = W.DEFAULT_STRENGTH_DB  # the guard's loss went back into the mark:
    assert strength - 0.1 <= W.mark_to_signal_db(clipped, y) <= strength <= -40.0
    assert np.count_nonzero(np.abs(y) >= 0.999) <= np.count_nonzero(np.abs(clipped) >= 0.999)
    assert np.max(np.abs(y)) <= 1.0


def test_whispers_keep_the_mark_in_the_telephone_band(corpus: dict) -> None:
    """Whispered voices (noise-like, little room below 4 kHz) were the 8 kHz misses (z 4-6).

    The telephone-band test (250 Hz - 4 kHz, 5 ms frames, quiet frames kept) finds both the default
    -40.5 dB mark and one written at -41 dB after resampling to 8 kHz and back, and after the 4 kHz
    low-pass, far above the threshold; the full-band test alone scored them 4-7.
    """
    assert W.DEFAULT_STRENGTH_DB >= -41.0 and W.DEFAULT_STRENGTH_DB <= -40.0
    for i in (7, 25):  # espeak-ng "+whisper" variants, 9-11 s
        assert VARIANTS[(i // len(VOICES) + i) % len(VARIANTS)] == "+whisper"
        for strength in (W.DEFAULT_STRENGTH_DB, -41.0):
            y = W.embed_samples(corpus["speech"][i], SR, strength_db=strength)
            assert W.mark_to_signal_db(corpus["speech"][i], y) <= -40.0
            for name in ("resample8", "lowpass4k"):
                d = W.detect((attack(name, y, np.random.default_rng(0)), SR))
                assert d.score > 2 * W.DEFAULT_THRESHOLD, (i, strength, name, d.score)
                assert d.lag == 0


def test_the_telephone_band_test_keeps_the_bound(corpus: dict) -> None:
    """Band-limited audio, unmarked or marked with another key, stays under the threshold; the bound holds."""
    scores = []
    for i, x in enumerate(corpus["speech"][:30]):
        for name in ("resample8", "lowpass4k"):
            unmarked = attack(name, x, np.random.default_rng(i))
            scores.append(W.detect((unmarked, SR)).score)
            prepared = W.prepare((attack(name, W.embed_samples(x, SR), np.random.default_rng(i)), SR))
            assert prepared.telephone is not None
            scores.extend(W.detect_prepared(prepared, f"band key {i}/{k}").score for k in range(4))
    scores = np.array(scores)
    print(f"\nband-limited null trials: {scores.size}, max score {scores.max():.2f}")
    assert np.all(scores <= W.DEFAULT_THRESHOLD)
    assert 3.0 < np.median(scores) < 5.0
    bound = W.PERIOD * float(ndtr(-4.5))
    assert np.mean(scores > 4.5) <= bound + 3 * math.sqrt(bound / scores.size)


def test_clipped_hosts_are_found_from_their_plateaus(corpus: dict) -> None:
    """Hard-clipped noisy speech: the whitened test barely finds a -40.5 dB mark in such a dense host
    (z 5-8), but on the full-scale plateaus the clip guard leaves the mark alone, host-free."""
    rng = np.random.default_rng(12)
    clipped = []
    for i in (11, 12, 13):
        x = corpus["speech"][i].astype(np.float64)
        noisy = x + rng.standard_normal(x.size) * math.sqrt(np.mean(x * x) / 50)
        clipped.append(np.clip(noisy / np.quantile(np.abs(noisy), 0.65), -1.0, 1.0).astype(np.float32))
    for x in clipped:
        assert W.prepare((x, SR)).plateau is not None
        assert not W.detect((x, SR)).detected  # unmarked: the plateau test adds no false alarm
        y = W.embed_samples(x, SR)
        assert W.detect((y, SR)).score > 20.0
        cut = y[SR // 3 : SR // 3 + int(0.6 * y.size)]
        d = W.detect((cut * 0.25, SR))  # a crop, turned down: plateaus keep their shape
        assert d.score > 20.0 and d.lag == (SR // 3) % W.PERIOD
        prepared = W.prepare((y, SR))
        assert all(not W.detect_prepared(prepared, f"other key {k}").detected for k in range(20))
    assert W.prepare((corpus["speech"][11], SR)).plateau is None  # ordinary audio: the usual two tests only


def test_whole_files_use_the_near_lag_test(corpus: dict) -> None:
    """A file as written (lag 0) is scored against a handful of lags, not all of them: a lower bar."""
    y = W.embed_samples(corpus["speech"][9], SR)
    noisy = attack("noise10", y, np.random.default_rng(3))
    prepared = W.prepare((noisy, SR))
    folded = prepared.folded
    spec, power = W._carrier_spectrum(W.key_bytes(None))
    sigma = math.sqrt(2.0 / W.PERIOD**2 * np.sum(np.abs(folded) ** 2 * power))
    z = np.fft.irfft(folded * np.conj(spec), n=W.PERIOD) / sigma
    d = W.detect_prepared(prepared)
    assert d.lag == 0
    # the same z at lag 0 counts for more than it would in a search over all lags, never less
    assert d.score > z[0]
    near = np.r_[z[: W.NEAR_LAGS + 1], z[W.PERIOD - W.NEAR_LAGS :]]
    expected = (2 * W.NEAR_LAGS + 1) / D._NEAR_SHARE * ndtr(-near.max())  # Bonferroni share of the near test
    assert W.PERIOD * ndtr(-d.score) == pytest.approx(expected, rel=1e-6)


def test_speed_on_a_13_second_clip(corpus: dict) -> None:
    x = np.concatenate(corpus["speech"])[: 13 * SR]
    W.detect((W.embed_samples(x, SR), SR))  # warm caches (carrier, FFT plans)
    embed_t, detect_t = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        y = W.embed_samples(x, SR)
        embed_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert W.detect((y, SR)).detected
        detect_t.append(time.perf_counter() - t0)
    print(f"\n13 s clip: embed {min(embed_t) * 1e3:.0f} ms, detect {min(detect_t) * 1e3:.0f} ms")
    assert min(embed_t) <= 0.1
    assert min(detect_t) <= 0.5


# --- behaviour -------------------------------------------------------------------------------------


def _audio(x: np.ndarray, rate: int = SR) -> Audio:
    return Audio(provenance=Provenance(stage="decode", seed=3, voice="v2/en_speaker_1"), samples=x, sample_rate=rate)


def test_wrong_key_does_not_detect_but_the_right_custom_key_does(corpus: dict) -> None:
    x = corpus["speech"][1]
    y = W.embed(_audio(x), key="my secret")
    assert W.detect(y, key="my secret").detected
    assert W.detect(y, key=b"my secret").detected  # str and its UTF-8 bytes are the same key
    assert not W.detect(y).detected  # default key
    assert not W.detect(y, key="my secreT").detected


def test_embed_returns_label_stage_audio_with_provenance(corpus: dict) -> None:
    a = _audio(corpus["speech"][2])
    y = W.embed(a, key="unique-key-4711")
    assert isinstance(y, Audio) and y.sample_rate == SR and y.n_samples == a.n_samples
    assert y.provenance.stage == "label"
    assert y.provenance.parent == a.id
    assert y.provenance.settings["watermarked"] is True
    assert y.provenance.settings["watermark_key"] == "custom"
    assert "unique-key-4711" not in json.dumps(y.provenance.to_dict())  # the key itself is never stored


def test_detects_at_any_sample_rate_and_in_stereo(corpus: dict) -> None:
    y = W.embed_samples(corpus["speech"][3], SR)
    for rate in (16_000, 22_050, 44_100, 48_000):
        assert W.detect((resample(y, SR, rate), rate)).detected, rate
    stereo = np.stack([y, y * 0.8])
    assert W.detect((stereo, SR)).detected
    assert W.detect((stereo.T, SR)).detected


def test_embedding_at_other_rates_keeps_the_level_and_is_detectable(corpus: dict) -> None:
    x24 = corpus["speech"][4]
    for rate in (16_000, 44_100):
        x = resample(x24, SR, rate).astype(np.float32)
        marked = W.embed(_audio(x, rate))
        assert marked.sample_rate == rate and marked.n_samples == x.size
        assert W.mark_to_signal_db(x, marked.samples) <= -40.0
        assert W.detect(marked).detected


def test_lag_locates_a_crop(corpus: dict) -> None:
    y = W.embed_samples(corpus["speech"][5], SR)
    for start in (0, 1234, 20_000):
        d = W.detect((y[start : start + 3 * SR], SR))
        assert d.detected
        assert d.lag == start % W.PERIOD


def test_detection_reports_an_analytic_false_positive_bound(corpus: dict) -> None:
    d = W.detect((corpus["speech"][6], SR))
    assert not d.detected
    assert d.threshold == pytest.approx(W.DEFAULT_THRESHOLD)
    assert d.false_positive_bound == pytest.approx(W.PERIOD * ndtr(-d.threshold))
    # 1e-4 per file: ten times inside the 1e-3 the project accepts
    # (z > 5.70; 4.47 at the near lags, 4.86 in the telephone band)
    assert 0.99e-4 <= d.false_positive_bound <= 1.01e-4
    assert d.threshold == pytest.approx(5.70, abs=0.01)
    assert 0.0 < d.p_value <= 1.0
    strict = W.detect((W.embed_samples(corpus["speech"][6], SR), SR), threshold=10.0)
    assert strict.threshold == 10.0 and strict.false_positive_bound < 1e-15


def test_detect_reads_files(tmp_path: Path, corpus: dict) -> None:
    a = _audio(W.embed_samples(corpus["speech"][7], SR))
    path = save_wav(a, tmp_path / "m.wav", label=False)
    assert W.detect(path).detected
    assert W.detect(str(path)).detected


def test_silence_and_tiny_inputs_do_not_crash() -> None:
    zeros = np.zeros(SR, np.float32)
    assert np.array_equal(W.embed_samples(zeros, SR), zeros)
    assert not W.detect((zeros, SR)).detected
    assert not W.detect((np.zeros(0), SR)).detected
    assert not W.detect((np.full(100, 0.1), SR)).detected


def test_bad_inputs_raise_errors_that_name_the_fix() -> None:
    with pytest.raises(W.WatermarkError, match="empty"):
        W.detect((np.zeros(10), SR), key="")
    with pytest.raises(W.WatermarkError, match="str, bytes or None"):
        W.detect((np.zeros(10), SR), key=42)  # type: ignore[arg-type]
    with pytest.raises(W.WatermarkError, match="strength_db"):
        W.embed_samples(np.ones(10), SR, strength_db=-5)
    with pytest.raises(ArtifactError, match="Audio artifact"):
        W.embed(np.zeros(10))  # type: ignore[arg-type]
    with pytest.raises(ArtifactError, match="NaN"):
        W.detect((np.array([0.0, np.nan]), SR))
    with pytest.raises(ArtifactError, match="sample rate must be positive"):
        W.detect((np.zeros(10), 0))


def _first_release_mark(x: np.ndarray, strength_db: float = -41.0) -> np.ndarray:
    """The mark as written until 2026-11-30: a flat carrier (no 250-600 Hz boost), -41 dB, clip guard."""
    spec, power = W._carrier_spectrum(W.key_bytes(None))
    flat = np.fft.irfft(np.where(power > 0, spec / np.sqrt(np.where(power > 0, power, 1.0)), 0.0), n=W.PERIOD)
    tiled = np.tile(flat, -(-x.size // W.PERIOD))[: x.size] * W._envelope(x) ** W.ENVELOPE_EXPONENT
    mark = tiled * math.sqrt(np.sum(x * x) * 10 ** (strength_db / 10) / np.sum(tiled * tiled))
    bound = np.maximum(np.abs(x), W.CLIP_GUARD)
    return np.clip(x + mark, -bound, bound).astype(np.float32)


def test_first_release_marks_still_detect(corpus: dict) -> None:
    """Files marked before the 250-600 Hz boost (flat carrier at -41 dB) keep detecting, edits included."""
    x = corpus["speech"][14].astype(np.float64)
    old = _first_release_mark(x)
    assert -41.01 <= W.mark_to_signal_db(x, old) <= -40.99
    spec, power = W._carrier_spectrum(W.key_bytes(None))
    assert power.max() == 4.0 and np.count_nonzero(power == 4.0) > 0  # the new carrier is not flat
    new_score = W.detect((W.embed_samples(x, SR, strength_db=-41.0), SR)).score
    old_score = W.detect((old, SR)).score
    assert old_score > 0.9 * new_score  # the boosted template costs flat marks little
    for name in ("mp3_32", "lowpass4k", "crop60"):
        assert W.detect((attack(name, old, np.random.default_rng(1)), SR)).detected, name


def test_marks_made_before_the_clip_guard_rescale_still_detect(corpus: dict) -> None:
    """Files written by the first release: the same carrier, clipped back without giving power back."""
    x = np.clip(corpus["speech"][10].astype(np.float64) * 4.0, -1.0, 1.0)  # loud: the guard bites
    bound = np.maximum(np.abs(x), W.CLIP_GUARD)
    old = np.clip(x + W.make_mark(x), -bound, bound).astype(np.float32)
    assert W.mark_to_signal_db(x, old) < W.mark_to_signal_db(x, W.embed_samples(x, SR)) - 0.1
    assert W.detect((old, SR)).detected
    assert W.detect((attack("mp3_64", old, np.random.default_rng(0)), SR)).detected
