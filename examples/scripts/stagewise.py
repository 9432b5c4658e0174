"""Stage by stage with the stage cache: change the coarse temperature, watch only coarse/fine/decode rerun.

    python examples/scripts/stagewise.py                 # offline, tiny UNTRAINED models (noise)
    python examples/scripts/stagewise.py --models suno   # Suno's real weights from the hub
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bark_core import BarkModels, decode, generate_coarse, generate_fine, generate_semantic, tiny_model_dir
from bark_core.cache import StageCache
from bark_core.label.export import export_audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="'suno', a hub repo, or a folder (default: the tiny set)")
    ap.add_argument("--text", default="Hello there! [laughs] This is Bark, one stage at a time.")
    ap.add_argument("--voice", default="v2/en_speaker_6")
    ap.add_argument("--out", default="stagewise_out", help="output folder")
    ap.add_argument("--max-seconds", type=float, default=None, help="cap the semantic stage (quick runs)")
    args = ap.parse_args()
    out = Path(args.out)
    models = BarkModels(args.models or tiny_model_dir(), cache=StageCache(out / "cache"))

    for coarse_temp in (0.7, 0.9):
        sem = generate_semantic(models, args.text, args.voice, seed=1, max_gen_duration_s=args.max_seconds)
        coarse = generate_coarse(models, sem, args.voice, seed=2, temp=coarse_temp)
        fine = generate_fine(models, coarse, args.voice, seed=3)
        audio = decode(models, fine)
        hits = {a.KIND: a.cache_hit for a in (sem, coarse, fine, audio)}
        print(f"coarse temp {coarse_temp}: cache hits {hits}")
        path = export_audio(audio, out / f"take_coarse_{coarse_temp}.wav", overwrite=True, text=args.text,
                            seed=1, voice=args.voice)
        print(f"  wrote {path} ({audio.duration_s:.2f} s)")
    print("cache:", models.cache.stats.to_dict())


if __name__ == "__main__":
    main()
