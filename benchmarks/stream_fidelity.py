"""How a streamed take differs from the one-shot take of the same seed: fine codes and the audio at the joins.

For each seed and fine temperature, one take from :func:`bark_core.generate` and one from
:func:`bark_core.generate_stream` (same master seed, so the same semantic and coarse tokens):
- fine agreement: the share of fine codes (codebooks 3-8) equal to the one-shot fine stage's;
- join flux: spectral flux (20 ms frames, 10 ms hop) across each join of the streamed take, in
  multiples of the take's median flux, next to the one-shot take's flux at the same places (a click
  would show as a spike only in the streamed column);
- log-spectral distance between the two takes' audio, near the joins and over the whole take (dB).

    python benchmarks/stream_fidelity.py --models /tmp/bark-bench-weights-small/hf --tokens 256
    python benchmarks/stream_fidelity.py --tiny                      # smoke run on the tiny untrained set
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from bark_core import BarkModels, generate, generate_stream
from bark_core.models.tiny import write_tiny_model_set

TEXT = "Hello, my name is Suno. And, uh, I like pizza. [laughs] But I also have other interests such as playing"
FRAME_S, HOP_S = 0.02, 0.01


def _spectra(x: np.ndarray, rate: int) -> np.ndarray:
    n, hop = int(FRAME_S * rate), int(HOP_S * rate)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[::hop] * np.hanning(n)
    return np.abs(np.fft.rfft(frames, axis=-1)) + 1e-8


def _flux(spec: np.ndarray) -> np.ndarray:
    return np.sqrt((np.diff(spec, axis=0) ** 2).sum(axis=1))


def compare(models: BarkModels, seed: int, fine_temp: float | None, chunk_s: float, tokens: int) -> dict:
    kw = dict(allow_early_stop=False, max_gen_duration_s=(tokens - 0.5) / 49.9, fine_temp=fine_temp)
    one = generate(models, TEXT, seed=seed, **kw)
    chunks = list(generate_stream(models, TEXT, seed=seed, chunk_s=chunk_s, **kw))
    take = chunks[-1].take
    assert np.array_equal(take.coarse.codes, one.coarse.codes)
    agree = float((take.fine.codes[2:] == one.fine.codes[2:]).mean())
    rate = take.audio.sample_rate
    a, b = take.audio.samples, one.audio.samples
    sa, sb = _spectra(a, rate), _spectra(b, rate)
    fa, fb = _flux(sa), _flux(sb)
    joins = np.cumsum([c.samples.size for c in chunks[:-1]])
    hop = int(HOP_S * rate)
    idx = [min(len(fa) - 1, max(0, j // hop - 1)) for j in joins]
    near = np.zeros(len(sa), bool)
    for i in idx:
        near[max(0, i - 2):i + 3] = True
    lsd = np.sqrt(((20 * np.log10(sa / sb)) ** 2).mean(axis=1))
    return {"seed": seed, "fine_temp": fine_temp, "chunks": len(chunks), "fine_agreement": agree,
            "join_flux_streamed": float(np.max(fa[idx] / np.median(fa))) if idx else None,
            "join_flux_one_shot": float(np.max(fb[idx] / np.median(fb))) if idx else None,
            "lsd_near_joins_db": float(lsd[near].mean()) if idx else None, "lsd_overall_db": float(lsd.mean()),
            "first_audio_s": chunks[0].elapsed_s}


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="a model folder (speed.py writes random small/large ones)")
    ap.add_argument("--tiny", action="store_true", help="the tiny untrained set instead")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--codec", default=None)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--chunk-s", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--dtype", default="int8")
    args = ap.parse_args(argv)
    if args.tiny or not args.models:
        folder = write_tiny_model_set(tempfile.mkdtemp(), n_embd=64, n_head=2, seed=5)
        models = BarkModels(folder, device="cpu", dtype=args.dtype, decoder="fast")
    else:
        root = Path(args.models)
        models = BarkModels(root, device="cpu", dtype=args.dtype, decoder="fast",
                            tokenizer=args.tokenizer or root.parent / "tokenizer",
                            codec_checkpoint=args.codec or root.parent / "codec.th")
    rows = [compare(models, s, t, args.chunk_s, args.tokens) for s in args.seeds for t in (None, 0.5)]
    print(f"\n{datetime.date.today()} {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.tokens} tokens, chunk_s {args.chunk_s}, dtype {args.dtype}")
    print("| seed | fine temp | chunks | fine codes equal to one-shot | join flux streamed (× median) | "
          "same places one-shot | LSD near joins dB | LSD overall dB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = (lambda v, f: "-" if v is None else format(v, f))
        print(f"| {r['seed']} | {r['fine_temp']} | {r['chunks']} | {r['fine_agreement']:.1%} | "
              f"{fmt(r['join_flux_streamed'], '.2f')} | {fmt(r['join_flux_one_shot'], '.2f')} | "
              f"{fmt(r['lsd_near_joins_db'], '.1f')} | {r['lsd_overall_db']:.1f} |")
    print(json.dumps(rows))
    return rows


if __name__ == "__main__":
    main()
