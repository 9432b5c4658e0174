"""The watermark's development set: short whispered clips, the hardest speech after band-limiting.

The telephone-band test of ``bark_core/label/watermark_detect.py`` was tuned on these clips (and on
the tests' own), never on ``watermark_bench.py``'s set. Run from the repository root::

    python benchmarks/watermark_dev.py            # 36 excerpts of 3.5-7.5 s, espeak-ng "+whisper" voices

Needs espeak-ng and ffmpeg on PATH.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from bark_core.label import watermark as W

sys.path.insert(0, str(Path(__file__).resolve().parent))
from watermark_bench import SR, T, extra_attack  # noqa: E402  (the tests' clips and edits)

SEEDS = (11, 12, 13)  # neither the tests' 0 nor the benchmark's 2024
EDITS = ("resample8", "lowpass4k", "mp3_32", "opus_32", "noise10")


def whisper_clips(per_seed: int = 12) -> list[np.ndarray]:
    """The tests' espeak-ng generator at the indexes it gives a "+whisper" variant, cut to 3.5-7.5 s."""
    whisper = [i for i in range(200) if T.VARIANTS[(i // len(T.VOICES) + i) % len(T.VARIANTS)] == "+whisper"]
    with tempfile.TemporaryDirectory() as tmp:
        clips = [T._espeak_clip((i, Path(tmp), seed)) for seed in SEEDS for i in whisper[:per_seed]]
    rng = np.random.default_rng(5)
    return [x[: int(rng.uniform(3.5, 7.5) * SR)] for x in clips]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-seed", type=int, default=12, help="whispered clips per seed (default 12)")
    args = ap.parse_args(argv)
    marked = [W.embed_samples(x, SR) for x in whisper_clips(args.per_seed)]

    def score(job: tuple[str, int]) -> float:
        name, i = job
        y = marked[i]
        z = T.attack(name, y, np.random.default_rng(i)) if name in T.ATTACK_NAMES else extra_attack(name, y, None)
        return W.detect((z, SR)).score

    print(f"{len(marked)} whispered clips; threshold z > {W.DEFAULT_THRESHOLD:.2f}")
    with ThreadPoolExecutor(2) as pool:
        for name in EDITS:
            s = np.array(list(pool.map(score, [(name, i) for i in range(len(marked))])))
            print(f"{name:<10} detected {np.mean(s > W.DEFAULT_THRESHOLD):6.1%}  lowest z {s.min():5.1f}  "
                  f"median {np.median(s):5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
