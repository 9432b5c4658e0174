"""``bark-core clone REF.wav --rights-who ... --rights-what ... -o voice.npz``: a full voice from a recording.

The rights options come first in the help and are checked before anything is read: a voice made from
someone's recording imitates that person, and the record of their consent travels with the voice into
every take and label.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from .. import constants as C
from ..rights import COMMON_RIGHTS, RightsError, utc_today
from .common import add_model_args, models_from


def add_clone_commands(sub: Any) -> None:
    p = sub.add_parser(
        "clone", help="a voice (.npz) from a recording, with the speaker's rights record",
        description="Makes a Bark voice (semantic, coarse and fine prompts) from a recording of one speaker: up to "
                    "--max-seconds of whole phrases, silence trimmed; HuBERT base + a quantizer give the semantic "
                    "prompt, EnCodec the others. The official quantizers are trained on English speech. A rights "
                    "record (whose voice, on what basis) is required and goes into every label made with the voice.",
    )
    p.add_argument("recording", help="the recording: any audio file ffmpeg reads (only --start..--end is read)")
    p.add_argument("-o", "--output", required=True, help="voice file to write (.npz; Suno's loader reads it too)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    r = p.add_argument_group("rights record (required)")
    r.add_argument("--rights-who", help="whose voice this is (or who holds the rights to it)")
    r.add_argument("--rights-what", help=f"the basis for using it, e.g. {', '.join(repr(c) for c in COMMON_RIGHTS)}")
    r.add_argument("--rights-when", help="the date it was granted, YYYY-MM-DD (default: today)")
    r.add_argument("--rights-evidence", help="where the proof is kept (a signed form, a contract number)")
    r.add_argument("--rights-note", help="anything else, e.g. limits on use")
    s = p.add_argument_group("what to take from the recording")
    s.add_argument("--start", type=float, default=None, help="seconds from the start of the file (default: 0)")
    s.add_argument("--end", type=float, default=None, help="seconds from the start of the file (default: its end)")
    s.add_argument("--max-seconds", type=float, default=C.CLONE_PROMPT_S,
                   help=f"longest prompt, in whole phrases (default: {C.CLONE_PROMPT_S:g})")
    s.add_argument("--no-trim", action="store_true", help="keep the range as given (its last --max-seconds)")
    s.add_argument("--name", default=None, help="name of the voice (default: the file's name)")
    q = p.add_argument_group("semantic prompt")
    q.add_argument("--semantic", choices=["hubert", "none"], default="hubert",
                   help="hubert: the full clone (default); none: coarse and fine prompts only (partial voice)")
    q.add_argument("--quantizer", default=None,
                   help=f"an official file ({', '.join(C.QUANTIZER_FILES)}; default {C.DEFAULT_QUANTIZER}), a local "
                        ".pth, or owner/repo/file.pth on the hub (e.g. one trained on another language)")
    q.add_argument("--hubert", default=None,
                   help="HuBERT base: a hub repo or a local folder (default: facebook/hubert-base-ls960)")
    add_model_args(p)
    p.set_defaults(func=run_clone)


def run_clone(args: argparse.Namespace) -> int:
    from ..cloning import RecordingWarning, voice_from_audio  # heavy: only when a voice is made

    if not (args.rights_who or "").strip() or not (args.rights_what or "").strip():
        raise RightsError(
            "bark-core clone needs --rights-who (whose voice this is) and --rights-what (the basis for using it, "
            "e.g. 'own voice', 'written consent', 'licensed'): public use of a cloned voice needs the speaker's "
            "consent, and this record goes into every label made with the voice."
        )
    rights = {"who": args.rights_who, "right": args.rights_what, "when": args.rights_when or utc_today(),
              "evidence": args.rights_evidence, "note": args.rights_note}
    name = args.name or Path(args.recording).stem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordingWarning)
        voice = voice_from_audio(models_from(args), args.recording, rights=rights, semantic=args.semantic,
                                 quantizer=args.quantizer, hubert=args.hubert, start_s=args.start, end_s=args.end,
                                 max_seconds=args.max_seconds, trim=not args.no_trim, name=name)
    for w in caught:
        if issubclass(w.category, RecordingWarning):
            print(f"warning: {w.message}", file=sys.stderr)
    path = voice.save(args.output, overwrite=args.overwrite)
    src = voice.source
    sem = src.get("semantic", {})
    how = "none (partial voice)" if sem.get("method") == "none" else sem.get("method", "?")
    if isinstance(sem.get("quantizer"), dict):
        qz = sem["quantizer"]
        how = f"HuBERT + {qz['file']} ({qz['source']}, language {qz['language']})"
    lo, hi = src["range_s"]
    print(f"{path}: voice {voice.name!r} from {src.get('file', args.recording)} {lo:.2f}-{hi:.2f} s: "
          f"{len(voice.semantic)} semantic tokens, {voice.coarse.shape[1]} code frames ({src['seconds']:.2f} s)")
    print(f"  semantic prompt: {how}")
    print(f"  rights: {rights['who']}, {rights['right']}, since {voice.source['rights']['when']}")
    return 0
