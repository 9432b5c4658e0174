"""The voice-cloning quantizer: HuBERT features in, Bark semantic tokens out.

Bark's first stage has no public audio encoder. The community's answer (gitmylo's
bark-voice-cloning-HuBERT-quantizer, MIT) is a small network trained on pairs of Bark's own semantic
tokens and the HuBERT features (:mod:`bark_core.models.hubert`) of the audio Bark made from them. Its
published checkpoints are read here as they are, never unpickled beyond plain tensors.

Checkpoint layout (``torch.save`` of a state dict; D feature width, H hidden width, V = 10,000 tokens):

* ``lstm.weight_ih_l0`` (4H, D), ``lstm.weight_hh_l0`` (4H, H), ``lstm.bias_ih_l0`` and ``lstm.bias_hh_l0``
  (4H), and the same four ``_l1`` tensors with (4H, H): a two-layer unidirectional LSTM;
* version 1 only: ``intermediate.weight`` (I, H) and ``intermediate.bias`` (I), a linear layer (I = 4096);
* ``fc.weight`` (V, H or I) and ``fc.bias`` (V).

Files written by the reference's newer code also hold a zip entry ``<file stem>/.info`` with
``{"input_size", "hidden_size", "output_size", "version"}``; older files (such as
``quantifier_hubert_base_ls960_14.pth``) are version 0 with D = 768, H = 1024. Here every size is read
from the tensors and checked against ``.info`` when present.

The forward pass runs the LSTM over the whole recording at once (one unbatched sequence), then the
linear layer(s), a log-softmax over the V classes, and takes the most likely class per frame: one
semantic token per HuBERT frame.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import constants as C
from ..errors import CheckpointError
from ..fileio import atomic_write
from ..hub import file_sha256, hub_file
from .suno import safe_torch_load

QUANTIZER_REPO = "GitMylo/bark-voice-cloning"
# The official files (gitmylo's README table): all trained on English speech, on HuBERT base features.
KNOWN_QUANTIZERS: dict[str, dict[str, Any]] = {
    "quantifier_hubert_base_ls960_14.pth": {"version": 0, "epoch": 14, "language": "en"},
    "quantifier_V1_hubert_base_ls960_23.pth": {"version": 1, "epoch": 23, "language": "en"},
    "quantifier_hubert_base_ls960.pth": {"version": 0, "epoch": 3, "language": "en"},
}
DEFAULT_QUANTIZER = C.DEFAULT_QUANTIZER
_LSTM_LAYERS = 2
_INFO_SUFFIX = "/.info"


class Quantizer(torch.nn.Module):
    """Two LSTM layers, an optional hidden linear layer (version 1), and a linear layer to Bark's tokens.

    Attribute names are the checkpoint's, so its state dict loads without renaming.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int = C.SEMANTIC_VOCAB_SIZE,
                 intermediate_size: int | None = None):
        super().__init__()
        self.lstm = torch.nn.LSTM(input_size, hidden_size, _LSTM_LAYERS, batch_first=True)
        width = hidden_size
        if intermediate_size:
            self.intermediate = torch.nn.Linear(hidden_size, intermediate_size)
            width = intermediate_size
        self.fc = torch.nn.Linear(width, output_size)
        self.version = 1 if intermediate_size else 0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(frames, D) features -> (frames, V) log-probabilities."""
        x, _ = self.lstm(features)
        if self.version == 1:
            x = self.intermediate(x)
        return torch.log_softmax(self.fc(x), dim=-1)

    @torch.inference_mode()
    def tokens(self, features: torch.Tensor) -> np.ndarray:
        """The most likely semantic token of every frame, int64."""
        device = next(self.parameters()).device
        logp = self(features.to(device=device, dtype=torch.float32))
        return logp.argmax(dim=-1).cpu().numpy().astype(np.int64)


@dataclass
class LoadedQuantizer:
    """A quantizer plus what a voice's provenance and labels record about it (never a local path)."""

    module: Quantizer
    name: str
    source: str
    sha256: str
    input_size: int
    hidden_size: int
    language: str = "unknown"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.module.version

    def tokens(self, features: torch.Tensor) -> np.ndarray:
        return self.module.tokens(features)

    def describe(self) -> dict[str, Any]:
        return {"file": self.name, "source": self.source, "sha256": self.sha256, "version": self.version,
                "language": self.language, "input_size": self.input_size, "hidden_size": self.hidden_size}


def read_quantizer_info(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``.info`` JSON a newer checkpoint carries inside its zip, or None (older files, plain pickles)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(_INFO_SUFFIX)]
            if not names:
                return None
            data = json.loads(zf.read(names[0]).decode("utf-8"))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _shapes(state: dict[str, torch.Tensor], where: str) -> tuple[int, int, int, int | None]:
    """(input, hidden, output, intermediate or None) read from the tensors, with every shape checked."""
    want = {f"lstm.{kind}_l{i}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            for i in range(_LSTM_LAYERS)} | {"fc.weight", "fc.bias"}
    has_mid = "intermediate.weight" in state or "intermediate.bias" in state
    if has_mid:
        want |= {"intermediate.weight", "intermediate.bias"}
    missing, extra = sorted(want - set(state)), sorted(set(state) - want)
    if missing or extra:
        raise CheckpointError(f"{where} is not a HuBERT quantizer checkpoint: missing {missing[:5]}, unexpected "
                              f"{extra[:5]}. Use {DEFAULT_QUANTIZER} from the hub repo {QUANTIZER_REPO}.")
    gates, d_in = state["lstm.weight_ih_l0"].shape
    hidden = gates // 4
    mid = state["intermediate.weight"].shape[0] if has_mid else None
    expected = {
        "lstm.weight_ih_l0": (4 * hidden, d_in), "lstm.weight_ih_l1": (4 * hidden, hidden),
        "fc.weight": (state["fc.weight"].shape[0], mid or hidden), "fc.bias": (state["fc.weight"].shape[0],),
        **{f"lstm.weight_hh_l{i}": (4 * hidden, hidden) for i in range(_LSTM_LAYERS)},
        **{f"lstm.bias_{k}_l{i}": (4 * hidden,) for k in ("ih", "hh") for i in range(_LSTM_LAYERS)},
    }
    if mid:
        expected.update({"intermediate.weight": (mid, hidden), "intermediate.bias": (mid,)})
    bad = [f"{k} {tuple(state[k].shape)} (expected {v})" for k, v in expected.items() if tuple(state[k].shape) != v]
    if bad or gates % 4:
        raise CheckpointError(f"{where} has tensors of inconsistent shapes: {bad[:3]}. The file is damaged or not "
                              "a quantizer checkpoint.")
    return d_in, hidden, state["fc.weight"].shape[0], mid


def load_quantizer(path: str | os.PathLike, *, name: str | None = None, source: str = "file",
                   language: str | None = None, device: str | torch.device = "cpu") -> LoadedQuantizer:
    """Read a quantizer checkpoint with ``torch.load(weights_only=True)`` and no extra allowed globals: a
    file whose pickle would build anything but tensors and plain containers is refused unread."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise CheckpointError(f"No quantizer file at {path}. Download {DEFAULT_QUANTIZER} from the hub repo "
                              f"{QUANTIZER_REPO}, or pass the path of a quantizer .pth.")
    state = safe_torch_load(path, allow=())
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{name} does not hold a plain state dict of tensors; it is not a quantizer checkpoint.")
    d_in, hidden, out, mid = _shapes(state, name)
    if out != C.SEMANTIC_VOCAB_SIZE:
        raise CheckpointError(f"{name} predicts {out} classes; Bark's semantic vocabulary has "
                              f"{C.SEMANTIC_VOCAB_SIZE}. It is a quantizer for another model.")
    info = read_quantizer_info(path)
    if info is not None:
        stated = (info.get("input_size"), info.get("hidden_size"), info.get("output_size"), info.get("version"))
        if stated != (d_in, hidden, out, 1 if mid else 0):
            raise CheckpointError(f"{name}: its .info says (input, hidden, output, version) = {stated}, but its "
                                  f"tensors are {(d_in, hidden, out, 1 if mid else 0)}. The file is damaged.")
    module = Quantizer(d_in, hidden, out, mid)
    module.load_state_dict(state)
    module.eval().to(device)
    known = KNOWN_QUANTIZERS.get(path.name, {})
    return LoadedQuantizer(module=module, name=name, source=source, sha256=file_sha256(path), input_size=d_in,
                           hidden_size=hidden, language=language or known.get("language", "unknown"),
                           info=info or {})


def resolve_quantizer(spec: str | os.PathLike | None = None, *, default: str | os.PathLike | None = None,
                      folder: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                      local_files_only: bool | None = None) -> tuple[Path, str, str]:
    """(local path, file name, source) of a quantizer.

    ``spec``: None (the file ``default`` if given, e.g. a model folder's own quantizer, else
    :data:`DEFAULT_QUANTIZER`), an official file name from :data:`KNOWN_QUANTIZERS` (taken from ``folder``
    when it holds a copy, else from the hub repo :data:`QUANTIZER_REPO`), a local ``.pth`` path, or
    ``owner/repo/file.pth`` for a quantizer in another hub repo (e.g. one trained on another language).
    """
    if spec is None and default is not None and Path(default).is_file():
        return Path(default), Path(default).name, "file"
    if spec is None or (isinstance(spec, str) and spec in KNOWN_QUANTIZERS):
        name = str(spec or DEFAULT_QUANTIZER)
        if folder is not None and (Path(folder) / name).is_file():
            return Path(folder) / name, name, "file"
        repo, filename = QUANTIZER_REPO, name
    else:
        text = os.fspath(spec)
        local = Path(text).expanduser()
        if local.is_file():
            return local, local.name, "file"
        parts = text.replace("\\", "/").split("/")
        if isinstance(spec, os.PathLike) or len(parts) < 3 or os.path.isabs(text) or text.startswith((".", "~")):
            raise CheckpointError(
                f"Quantizer {text!r} is neither a file nor a hub file. Pass the path of a .pth, one of "
                f"{', '.join(KNOWN_QUANTIZERS)} (from {QUANTIZER_REPO}), or owner/repo/file.pth."
            )
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    try:
        path = hub_file(repo, filename, cache_dir=cache_dir, local_files_only=local_files_only)
    except CheckpointError as exc:
        raise CheckpointError(
            f"Cannot get the quantizer {filename} from the hub repo {repo} ({exc.__cause__ or exc}). Download it "
            f"once where the hub is reachable (it is cached), or download it by hand and pass its path "
            f"(quantizer='/path/to/{Path(filename).name}', or --quantizer on the command line)."
        ) from exc
    return path, Path(filename).name, f"hub:{repo}"


def random_quantizer_state(input_size: int, hidden_size: int, *, intermediate_size: int | None = None,
                           seed: int = 0, std: float = 0.5) -> dict[str, torch.Tensor]:
    """Random weights in the published layout, spread wide enough that each frame's best token is clear."""
    gen = torch.Generator().manual_seed(seed)
    module = Quantizer(input_size, hidden_size, C.SEMANTIC_VOCAB_SIZE, intermediate_size)
    return {k: torch.randn(v.shape, generator=gen) * std for k, v in module.state_dict().items()}


def save_quantizer(path: str | os.PathLike, state: dict[str, torch.Tensor], *, with_info: bool = True) -> Path:
    """Write a state dict as the reference does: ``torch.save`` to the file (its zip records sit under the
    file's stem), then, for ``with_info``, a ``<stem>/.info`` entry with the sizes and version."""
    path = Path(path)
    d_in, hidden, out, mid = _shapes(state, path.name)
    with tempfile.TemporaryDirectory(prefix="bark-quantizer-") as tmp:
        staged = Path(tmp) / path.name
        torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, staged)
        if with_info:
            info = {"input_size": d_in, "hidden_size": hidden, "output_size": out, "version": 1 if mid else 0}
            with zipfile.ZipFile(staged, "a") as zf:
                zf.writestr(f"{staged.stem}{_INFO_SUFFIX}", json.dumps(info))
        data = staged.read_bytes()
    with atomic_write(path) as fh:
        fh.write(data)
    return path

