"""A long text in one voice: sentence chunks, carried voice, one seed for the whole piece.

    python examples/scripts/long_form.py                 # offline, tiny UNTRAINED models (noise)
    python examples/scripts/long_form.py --models suno --continuity reset
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bark_core import BarkModels, tiny_model_dir
from bark_core.label.export import export_audio
from bark_core.stages.longform import generate_long

TEXT = ("Dr. Smith paid $3.50 for the map. It was old, and the ink had faded... but the route was clear! "
        "They left at dawn. By noon the river was in sight, wide and slow. [sighs] Nobody spoke.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="'suno', a hub repo, or a folder (default: the tiny set)")
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--voice", default="v2/en_speaker_6")
    ap.add_argument("--continuity", choices=["fixed", "carry", "reset"], default="carry")
    ap.add_argument("--gap", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-seconds", type=float, default=None, help="cap each chunk (quick runs)")
    ap.add_argument("--out", default="long_form.wav")
    args = ap.parse_args()
    models = BarkModels(args.models or tiny_model_dir())

    def progress(chunk: int, n: int, stage: str, done: int, total: int) -> None:
        if done == total:
            print(f"chunk {chunk}/{n}: {stage} done")

    long = generate_long(models, args.text, args.voice, seed=args.seed, continuity=args.continuity, gap_s=args.gap,
                         progress=progress, max_gen_duration_s=args.max_seconds)
    for i, (chunk, voice) in enumerate(zip(long.chunks, long.voices_used, strict=True), 1):
        print(f"{i}: [{voice}] {chunk}")
    path = export_audio(long.audio, Path(args.out), overwrite=True, text=args.text, seed=args.seed)
    print(f"wrote {path} ({long.audio.duration_s:.2f} s)")


if __name__ == "__main__":
    main()
