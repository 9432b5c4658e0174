"""The figures every quality check uses, each with the reason for its value.

Bark's scenarios end with "Check: clarity, noise, repeatability" and public use needs human
quality checks. A person still has to listen (see :mod:`bark_core.review`); this module tells them
where to listen and what to look for, with the figure behind every remark, so that a take with a
hallucinated tail, a hiss, a clipped peak or no speech at all is caught before anyone publishes it.

Every figure is defined precisely below, so it can be checked on constructed signals:

* Frames are 20 ms long every 10 ms; a frame's power is the mean of its squared samples and its
  level is ``10*log10(power)`` dBFS (so a full-scale sine reads -3 dBFS).
* **Noise level** ``P_noise``: the mean power of the "noise frames", those within
  :data:`NOISE_BAND_DB` of the 10th-percentile frame level (the quietest frames and their peers).
* **Active frames**: frames above ``max(noise level + ACTIVITY_MARGIN_DB, loud level - ACTIVITY_RANGE_DB)``,
  the loud level being the 95th-percentile frame level. Edges of active regions are refined on 5 ms
  blocks, so silences are measured to within a few milliseconds.
* **Speech-to-noise ratio** ``10*log10((P_active - P_noise) / P_noise)``, ``P_active`` being the mean
  power of the active frames: the power the speech adds over the background, relative to that
  background. For tone bursts in white noise it equals the tone-to-noise power ratio.

A report records the thresholds it used (:data:`THRESHOLDS`).
"""

from __future__ import annotations

# ---- analysis grid -----------------------------------------------------------------------------
FRAME_S = 0.020  # 20 ms: short enough to resolve syllables and pauses, long enough for a stable power
HOP_S = 0.010  # 10 ms: the usual speech-analysis hop; 100 frames a second
BLOCK_S = 0.005  # 5 ms blocks to place the edges of sounds and silences precisely
POWER_FLOOR = 1e-10  # -100 dBFS: below 16-bit resolution, so "digital silence" has a finite level

# ---- noise --------------------------------------------------------------------------------------
NOISE_PERCENTILE = 10  # speech leaves at least ~10 % of a take between words and phrases
NOISE_BAND_DB = 3.0  # frames within 3 dB of that level are background; steady noise varies < 1 dB per frame
LOUD_PERCENTILE = 95  # the "loud level": robust to a few clicks, unlike the maximum
ACTIVITY_MARGIN_DB = 6.0  # 6 dB above the background (4x its power) is clearly a sound of its own
ACTIVITY_RANGE_DB = 40.0  # more than 40 dB under the loud level is inaudible next to it: not speech
SNR_WARN_DB = 20.0  # below 20 dB the background is plainly audible under the speech
SNR_FAIL_DB = 10.0  # below 10 dB the background competes with the speech and words get lost
NOISE_FLOOR_WARN_DBFS = -50.0  # a background above -50 dBFS is heard in every pause at normal volume
HISS_FLOOR_DBFS = -60.0  # hiss under -60 dBFS meets the audiobook noise-floor limit (ACX), whatever its colour
HISS_BAND_HZ = (200.0, 8000.0)  # where hiss is heard; excludes hum and rumble below, codec cut-offs above
HISS_FLATNESS = 0.5  # pause spectra this flat are broadband hiss (white noise: ~1, hum or room tone: < 0.2)
CLIP_LEVEL = 0.999  # |x| >= 0.999 (-0.01 dBFS) counts as at full scale
CLIP_WARN_PCT = 0.01  # 0.01 %: more than a few isolated peaks at full scale, i.e. real clipping
CLIP_FAIL_PCT = 0.1  # 0.1 %: clipping this often is heard as crackle and distortion
DC_WARN = 0.01  # a mean of 1 % of full scale (-40 dBFS) wastes headroom and clicks at every cut
HUM_BASES_HZ = (50.0, 60.0)  # mains frequencies
HUM_HARMONICS = 4  # hum and its buzz: 50/100/150/200 Hz (60/120/180/240 Hz)
HUM_PEAK_DB = 10.0  # the mains fundamental must stand 10 dB over its neighbours: speech has no line there
HUM_WARN_DB = -35.0  # hum 35 dB under the whole take is still heard in pauses; stricter gives false alarms

# ---- speech or not ------------------------------------------------------------------------------
VOICING_THRESHOLD = 0.5  # normalised autocorrelation of a voiced frame (Praat uses 0.45); noise stays < 0.35
VOICED_MIN = 0.2  # speech is voiced in 30-70 % of its active frames; noise in ~0 %
MODULATION_MIN = 0.15  # speech's level swings at the syllable rate (2-8 Hz) by 30-60 %; steady noise by ~1 %
MUSIC_VOICED = 0.9  # pitched in 90 % of active frames: music or singing; speech has unvoiced consonants
FLATNESS_MAX = 0.3  # speech spectra are peaky (flatness 0.01-0.15); white noise ~0.55, pink noise ~0.3
SILENT_PEAK_DBFS = -60.0  # a take whose loudest sample is under -60 dBFS is heard as silence

# ---- clarity ------------------------------------------------------------------------------------
ACTIVITY_WARN = 0.3  # speech active in under 30 % of the take: mostly silence
EDGE_SILENCE_WARN_S = 1.0  # more than 1 s of silence before or after the speech is dead air
LONG_PAUSE_S = 1.5  # sentence pauses last 0.3-1 s; longer gaps are Bark's dropouts or hallucinated waits
PAUSE_MIN_S = 0.25  # gaps under 0.25 s are stop closures and breaths, part of speaking (articulation rate)
MIN_REGION_S = 0.03  # isolated sounds under 30 ms are clicks, not speech
RATE_SLOW = 2.0  # syllables per second of speech: even slow reading is ~3; under 2 means extra sound
RATE_FAST = 8.0  # fast speech peaks near 7; over 8 means words were skipped or the text was cut
END_WINDOW_S = 0.020  # the last 20 ms decide whether the take ends in silence
ABRUPT_END_DB = -20.0  # ending within 20 dB of the speech level means it stops mid-sound
SHORT_TAKE_S = 0.5  # shorter than one word: most likely a failed generation

# ---- loudness (ITU-R BS.1770 / EBU R128) --------------------------------------------------------
LOUDNESS_QUIET_LUFS = -35.0  # 12 dB under broadcast's -23 LUFS: listeners must turn it far up
LOUDNESS_LOUD_LUFS = -9.0  # 5 dB over streaming's -14 LUFS: squashed, fatiguing, likely clipped
LOUDNESS_BLOCK_S = 0.4  # BS.1770 gating blocks are 400 ms; shorter audio has no integrated loudness

# ---- ASR ------------------------------------------------------------------------------------------
ASR_RATE = 16_000  # pocketsphinx's bundled en-us model is trained at 16 kHz
ASR_WER_INFO = 0.5  # above this the transcript differs a lot; pocketsphinx alone often gets 0.3-0.9

THRESHOLDS: dict[str, float] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and isinstance(value, (int, float)) and not isinstance(value, bool)
}
