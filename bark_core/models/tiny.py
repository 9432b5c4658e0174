"""A complete, untrained Bark model set in the real file layouts, for machines without the hub.

Tests, notebooks, example workflows and the README's smoke run use it, so every loader and stage
runs end to end offline. The weights are random: the audio it makes is noise, and every file
and artifact says so.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from .. import constants as C
from ..errors import ExtraMissingError
from ..fileio import atomic_write
from ..voices import Voice
from .codec import write_random_codec
from .gpt import build_model, init_random_, preset_config
from .hubert import write_random_hubert
from .quantizer import random_quantizer_state, save_quantizer
from .suno import save_suno_checkpoint
from .tiny_vocab import write_tiny_vocab

log = logging.getLogger(__name__)
TINY_QUANTIZER = "quantizer_tiny_untrained.pth"

TINY_SHAPE = {"n_layer": 2, "n_head": 2, "n_embd": 32}
NOTICE = ("UNTRAINED random weights written by bark_core.write_tiny_model_set: everything runs end to end, "
          "but the audio is noise. Use models='suno' (or --models suno) for real speech.")


def write_tiny_model_set(folder: str | os.PathLike, *, seed: int = 0, n_layer: int = 2, n_head: int = 2,
                         n_embd: int = 32, std: float = 0.5, with_codec: bool = True,
                         max_gen_duration_s: float | None = None) -> Path:
    """Write text/coarse/fine ``.pt`` files (Suno's layout), a WordPiece vocab, an EnCodec state dict,
    the voice presets, a HuBERT and a quantizer (for voices from recordings; needs transformers) and a
    manifest into ``folder``; returns the folder for ``BarkModels(folder)``.

    ``std`` is larger than a training init so random logits are far apart and greedy decoding is
    not decided by rounding noise. Untrained weights hardly ever end speech, so every take would run
    to the 15 s cap; ``max_gen_duration_s`` (kept in the manifest) is the set's default cap instead,
    which a caller's own ``max_gen_duration_s`` overrides.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    files = {}
    for stage in ("text", "coarse", "fine"):
        cfg = preset_config(stage, "small", n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        model = init_random_(build_model(stage, cfg), gen, std=std)
        name = C.SUNO_CHECKPOINT_FILES["small"][stage]
        save_suno_checkpoint(folder / name, model, cfg, untrained=True)
        files[stage] = name
    write_tiny_vocab(folder / "tokenizer")
    files["tokenizer"] = "tokenizer"
    if with_codec:
        write_random_codec(folder / C.ENCODEC_CHECKPOINT_NAME, seed=seed)
        files[C.ENCODEC_CHECKPOINT_NAME] = C.ENCODEC_CHECKPOINT_NAME
    # every preset name, as small random voices, so pickers and voice code paths work offline too
    for i, name in enumerate(C.PRESET_NAMES):
        rng = np.random.default_rng([seed, i])
        n_sem = 60
        n_coarse = int(round(n_sem * C.SEMANTIC_TO_COARSE_RATIO / 2))
        fine = rng.integers(0, C.CODEBOOK_SIZE, size=(C.N_FINE_CODEBOOKS, n_coarse))
        voice = Voice(semantic=rng.integers(0, C.SEMANTIC_VOCAB_SIZE, size=n_sem), coarse=fine[:2], fine=fine,
                      name=name, source={"kind": "preset", "preset": name, "untrained": True})
        voice.save(folder / "voices" / f"{name}.npz", overwrite=True)
    files["voices"] = "voices"
    files.update(_write_clone_models(folder, seed))
    manifest: dict = {"untrained": True, "notice": NOTICE, "seed": seed, "shape": dict(n_layer=n_layer, n_head=n_head,
                      n_embd=n_embd), "files": files}
    if max_gen_duration_s is not None:
        manifest["max_gen_duration_s"] = float(max_gen_duration_s)
    with atomic_write(folder / C.MODEL_MANIFEST) as fh:
        fh.write(json.dumps(manifest, indent=2).encode())
    (folder / "README.txt").write_text(NOTICE + "\n")
    return folder


def _write_clone_models(folder: Path, seed: int) -> dict[str, str]:
    """A tiny HuBERT and a quantizer that fits it, so voices from recordings work offline too; skipped
    (with a log line) where the optional transformers package is missing."""
    try:
        write_random_hubert(folder / "hubert", seed=seed, hidden_size=32)
    except ExtraMissingError as exc:
        log.info("tiny set without HuBERT: %s", exc)
        return {}
    save_quantizer(folder / TINY_QUANTIZER, random_quantizer_state(32, 16, seed=seed))
    return {"hubert": "hubert", "quantizer": TINY_QUANTIZER}


def tiny_model_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """The tiny set in our cache folder, written on first use, with short takes (``TINY_TAKE_S`` seconds);
    a set written before voice cloning existed gains its HuBERT and quantizer."""
    folder = Path(cache_dir or C.default_cache_dir()) / "tiny-untrained"
    manifest_path = folder / C.MODEL_MANIFEST
    if not manifest_path.is_file():
        write_tiny_model_set(folder, max_gen_duration_s=C.TINY_TAKE_S)
        return folder
    manifest = json.loads(manifest_path.read_text())
    if "quantizer" not in manifest.get("files", {}):
        added = _write_clone_models(folder, int(manifest.get("seed", 0)))
        if added:
            manifest.setdefault("files", {}).update(added)
            with atomic_write(manifest_path) as fh:
                fh.write(json.dumps(manifest, indent=2).encode())
    return folder
