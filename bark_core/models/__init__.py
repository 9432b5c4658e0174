"""The networks and their files: Bark's GPTs, Suno's ``.pt`` and transformers-format checkpoints, the
tokenizer, the EnCodec codec, HuBERT and the voice-cloning quantizer, devices and precisions, and the tiny
untrained set for offline runs."""

from . import codec
from .device import (
    DTYPES,
    PRECISION_NAMES,
    DeviceError,
    Precision,
    best_device,
    check_device,
    resolve_dtype,
    resolve_precision,
)
from .gpt import GPT, GPTConfig, build_model
from .hf_format import load_hf_stage, resolve_hf_files
from .hubert import HUBERT_REPO
from .quant import Int8Linear, Int8UnsupportedError, check_int8
from .quantizer import DEFAULT_QUANTIZER, KNOWN_QUANTIZERS, QUANTIZER_REPO
from .suno import LoadedModel, load_suno_checkpoint, safe_torch_load, save_suno_checkpoint, suno_filename
from .tiny import tiny_model_dir, write_tiny_model_set
from .tokenizer import load_tokenizer

__all__ = [
    "codec", "DTYPES", "PRECISION_NAMES", "DeviceError", "Precision", "best_device", "check_device", "resolve_dtype",
    "resolve_precision", "GPT", "GPTConfig", "build_model", "load_hf_stage", "resolve_hf_files", "LoadedModel",
    "load_suno_checkpoint", "safe_torch_load", "save_suno_checkpoint", "suno_filename", "tiny_model_dir",
    "write_tiny_model_set", "load_tokenizer", "Int8Linear", "Int8UnsupportedError", "check_int8",
    "HUBERT_REPO", "DEFAULT_QUANTIZER", "KNOWN_QUANTIZERS", "QUANTIZER_REPO",
]
