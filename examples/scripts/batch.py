"""Several lines, several voices, one batch on the device.

    python examples/scripts/batch.py                 # offline, tiny UNTRAINED models (noise)
    python examples/scripts/batch.py --models suno
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bark_core import BarkModels, tiny_model_dir
from bark_core.label.export import export_audio
from bark_core.stages.batch import generate_batch

LINES = [("Welcome aboard.", "v2/en_speaker_6"), ("Bitte anschnallen.", "v2/de_speaker_3"),
         ("Bon voyage !", "v2/fr_speaker_1")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="'suno', a hub repo, or a folder (default: the tiny set)")
    ap.add_argument("--out", default="batch_out")
    ap.add_argument("--max-seconds", type=float, default=None, help="cap the semantic stage (quick runs)")
    args = ap.parse_args()
    models = BarkModels(args.models or tiny_model_dir())
    texts, voices = zip(*LINES, strict=True)
    takes = generate_batch(models, list(texts), list(voices), seeds=[1, 2, 3], max_gen_duration_s=args.max_seconds)
    for i, take in enumerate(takes):
        path = export_audio(take.audio, Path(args.out) / f"line{i + 1}.wav", overwrite=True, **take.label_meta())
        print(f"wrote {path} ({take.audio.duration_s:.2f} s, voice {voices[i]})")


if __name__ == "__main__":
    main()
