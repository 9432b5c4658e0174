"""Shared fixtures: tests never reach a hub; they write their own tiny checkpoints."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports huggingface_hub: no network, and a private, empty hub cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="bark-test-hf-")
os.environ.setdefault("XDG_CACHE_HOME", tempfile.mkdtemp(prefix="bark-test-cache-"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The public tiny untrained model set, written once per test session."""
    from bark_core import write_tiny_model_set

    return write_tiny_model_set(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def tiny_models(tiny_dir: Path):
    from bark_core import BarkModels

    return BarkModels(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def suno():
    """Suno's generation module from ``bark==0.1.5`` (a test-only reference, never used by bark_core)."""
    from reference import stub_broken_torchaudio

    stub_broken_torchaudio()
    import bark.generation as gen

    return gen


@pytest.fixture(scope="session")
def presets_dir(suno) -> Path:
    """The real voice presets shipped inside Suno's package, used as test data."""
    return Path(suno.__file__).parent / "assets" / "prompts"


@pytest.fixture(scope="session")
def load_benchmark():
    """``load_benchmark("speed")``: benchmarks/speed.py as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    def load(name: str):
        path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(f"bark_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load

