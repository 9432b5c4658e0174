"""Memory a CPU user sees: decoding a long take must not hold the whole take's activations at once."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bark_core import constants as C
from bark_core.models.codec import decode_codes, load_codec, write_random_codec

STATUS = Path("/proc/self/status")


def _peak_mb() -> float:
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _reset_peak() -> bool:
    try:  # Linux 4.0+: "5" resets this process's peak resident size to its current size
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's per-process peak (VmHWM)")
def test_a_long_decode_holds_one_block_of_activations(tmp_path: Path) -> None:
    """20 s of codes: decoded whole, EnCodec's last layers hold 0.5 GB at once; block by block (2 s) and
    trimmed between blocks, the decode adds little more than one block's worth."""
    codec = load_codec(checkpoint=write_random_codec(tmp_path / C.ENCODEC_CHECKPOINT_NAME, seed=1))
    codes = np.random.default_rng(0).integers(0, C.CODEBOOK_SIZE, (C.N_FINE_CODEBOOKS, 20 * 75))
    decode_codes(codes[:, :160], codec)  # first-call set-up (kernels, caches) outside the measurement
    if not _reset_peak():
        pytest.skip("this kernel cannot reset the peak resident size")
    before = _peak_mb()
    audio = decode_codes(codes, codec)
    grew = _peak_mb() - before
    print(f"\n20 s decode: resident peak +{grew:.0f} MB")
    assert audio.shape == (20 * 75 * 320,) and np.isfinite(audio).all()
    whole_bytes = 20 * C.SAMPLE_RATE * 32 * 4  # one (32 channels, 20 s) fp32 tensor of the last layer
    assert grew < 2.5 * whole_bytes / 2**20, f"decoding 20 s grew the resident peak by {grew:.0f} MB"
