"""Every number Bark's algorithm depends on, in one place.

The values are Suno's (``bark/generation.py``); other modules import them from here so a
token layout can never drift between the generator, the voice validator and the front ends.
"""

from __future__ import annotations

import os

# Audio and token rates.
SAMPLE_RATE = 24_000
SEMANTIC_RATE_HZ = 49.9
COARSE_RATE_HZ = 75
CODEBOOK_SIZE = 1024
N_COARSE_CODEBOOKS = 2
N_FINE_CODEBOOKS = 8
SEMANTIC_VOCAB_SIZE = 10_000
CONTEXT_WINDOW_SIZE = 1024

# Text -> semantic.
TEXT_ENCODING_OFFSET = 10_048
SEMANTIC_PAD_TOKEN = 10_000  # doubles as the end-of-speech token
SEMANTIC_EOS_TOKEN = SEMANTIC_PAD_TOKEN
TEXT_PAD_TOKEN = 129_595
SEMANTIC_INFER_TOKEN = 129_599
TEXT_WINDOW = 256
SEMANTIC_HISTORY_WINDOW = 256
MAX_SEMANTIC_STEPS = 768

# Semantic -> coarse.
COARSE_SEMANTIC_PAD_TOKEN = 12_048
COARSE_INFER_TOKEN = 12_050
COARSE_SEMANTIC_WINDOW = 256
SEMANTIC_TO_COARSE_RATIO = COARSE_RATE_HZ / SEMANTIC_RATE_HZ * N_COARSE_CODEBOOKS
MIN_COARSE_HISTORY = 60
MAX_COARSE_HISTORY = 630
SLIDING_WINDOW_LEN = 60
COARSE_HISTORY_TRIM = 2  # Suno drops the last two history tokens "for time alignment"

# Coarse -> fine.
FINE_PAD_TOKEN = CODEBOOK_SIZE
FINE_WINDOW = 1024
FINE_HISTORY = 512
FINE_STEP = 512

# Vocabularies of the published checkpoints.
TEXT_INPUT_VOCAB = 129_600
TEXT_OUTPUT_VOCAB = 10_048
COARSE_VOCAB = 12_096
FINE_VOCAB = 1_056

# Default sampling settings of Suno's generate_audio.
DEFAULT_SEMANTIC_TEMP = 0.7
DEFAULT_COARSE_TEMP = 0.7
DEFAULT_FINE_TEMP = 0.5
DEFAULT_MIN_EOS_P = 0.2

# The precisions a user may pick for the GPT stages (API, CLI, ComfyUI loader, studio): one list, so a new
# one reaches every surface. "autocast" is Suno's CUDA mode: fp32 weights under bf16 autocast with TF32;
# "int8": int8 linear weights with a scale per output channel, the rest bf16 (see bark_core.models.quant).
PRECISION_NAMES = ("auto", "fp32", "fp16", "bf16", "autocast", "int8")

# Voice presets: 13 languages x 10 speakers, v1 and v2, plus "announcer".
SUPPORTED_LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "es": "Spanish",
    "fr": "French",
    "hi": "Hindi",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "tr": "Turkish",
    "zh": "Chinese",
}
PRESET_NAMES: tuple[str, ...] = ("announcer",) + tuple(
    f"{prefix}{lang}_speaker_{n}"
    for prefix in ("", "v2/")
    for lang in SUPPORTED_LANGUAGES
    for n in range(10)
)

# Where Suno publishes weights, presets and the tokenizer.
HUB_REPO = "suno/bark"
MODEL_MANIFEST = "bark_models.json"  # a local model folder's index: which file holds which stage, untrained or not
HUB_REPO_SMALL = "suno/bark-small"
TOKENIZER_REPO = "bert-base-multilingual-cased"
SUNO_CHECKPOINT_FILES: dict[str, dict[str, str]] = {
    "large": {"text": "text_2.pt", "coarse": "coarse_2.pt", "fine": "fine_2.pt"},
    "small": {"text": "text.pt", "coarse": "coarse.pt", "fine": "fine.pt"},
}
ENCODEC_BANDWIDTH = 6.0
ENCODEC_CHECKPOINT_URL = "https://dl.fbaipublicfiles.com/encodec/v0/encodec_24khz-d7cc33bc.th"
ENCODEC_CHECKPOINT_NAME = "encodec_24khz-d7cc33bc.th"

STAGES = ("semantic", "coarse", "fine", "decode", "label")

TINY_TAKE_S = 2.0  # default take length of the tiny untrained set: noise needs no 15 s to prove an install works
MAX_SEED = 2**64 - 1  # seeds are whole numbers 0..MAX_SEED (torch's and ComfyUI's range); a drawn seed is 63 bits
# what the command line shows in --help without importing the modules (and torch) that use them
CLONE_PROMPT_S = 10.0  # Bark's presets hold 7-14 s; the quantizer's author recommends about 10 s
DEFAULT_QUANTIZER = "quantifier_hubert_base_ls960_14.pth"
QUANTIZER_FILES = ("quantifier_hubert_base_ls960_14.pth", "quantifier_V1_hubert_base_ls960_23.pth",
                   "quantifier_hubert_base_ls960.pth")  # the official files, all English-trained
SCRIPT_MAX_TRIES = 3  # a fourth seed rarely rescues a line the first three failed; each try costs a full take
JOB_SETTINGS = ("semantic_temp", "coarse_temp", "fine_temp", "top_k", "top_p", "min_eos_p", "max_gen_duration_s",
                "allow_early_stop")  # what a render job's row (or --set) may change

# Choices the command line offers before anything heavy is imported (bark-say --help stays instant);
# the label and quality modules take their values from here.
AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")  # what export_audio writes
WATERMARK_STRENGTH_DB = -40.5  # default watermark power relative to the audio (the rule: at most -40 dB)
QUALITY_EXPECT = ("speech", "music", "any")  # what a quality check expects to hear


def default_cache_dir() -> str:
    """Our own cache root (stage cache, tiny model sets); hub files stay in the hub cache."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bark_core")
