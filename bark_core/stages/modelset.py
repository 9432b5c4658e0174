"""The model set: where each stage's weights come from, and where and how each stage runs.

``BarkModels`` loads each stage's weights once, on demand, on the device and precision chosen for
that stage, and can park idle stages on the CPU (offload) so a small GPU holds one model at a time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .. import constants as C
from ..cache import StageCache
from ..errors import CheckpointError
from ..hub import file_fingerprint, hub_file
from ..models.codec import load_codec
from ..models.device import best_device, check_device, resolve_dtype
from ..models.hf_format import load_hf_stage, resolve_hf_files
from ..models.suno import LoadedModel, load_model_weights, load_suno_checkpoint, suno_filename
from ..models.tokenizer import load_tokenizer
from ..sampling.fast import release, resolve_decoder
from ..voices import Voice, load_voice

log = logging.getLogger(__name__)

MANIFEST = C.MODEL_MANIFEST
MODEL_STAGES = ("text", "coarse", "fine")


def _per_stage(value: Any, stage: str, default: Any) -> Any:
    if isinstance(value, Mapping):
        return value.get(stage, value.get("default", default))
    return default if value is None else value


class BarkModels:
    """Where the weights come from and where each stage runs.

    ``models``: "suno" (Suno's original ``.pt`` files from the hub repo suno/bark), a hub repo id in
    transformers format ("suno/bark-small", "suno/bark"), or a local folder in either layout (for
    example the tiny untrained set from :func:`bark_core.write_tiny_model_set`).
    ``size``, ``device`` and ``dtype`` may be one value or a dict per stage (text/coarse/fine/codec).
    ``decoder``: "auto" (the fast static-cache decoder on CUDA, the eager reference elsewhere),
    "fast" or "eager"; see :mod:`bark_core.sampling.fast`.
    """

    def __init__(self, models: str | os.PathLike = "suno", *, size: str | Mapping[str, str] = "large",
                 device: str | Mapping[str, str] | None = None, dtype: Any = None, offload: bool = False,
                 cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                 presets_dir: str | os.PathLike | None = None, codec_checkpoint: str | os.PathLike | None = None,
                 tokenizer: str | os.PathLike | None = None, cache: Any = None, decoder: str = "auto"):
        resolve_decoder(_per_stage(decoder, "text", "auto"), "cpu")  # reject a bad name now, not mid-take
        for dev in device.values() if isinstance(device, Mapping) else [device]:
            check_device(dev)  # a missing GPU is reported now, not after minutes of loading
        self.decoder = decoder
        self.source = os.fspath(models)
        self.size = size
        self.offload = offload
        self.cache_dir = cache_dir
        self.local_files_only = local_files_only
        self._device = device
        self._dtype = dtype
        self._loaded: dict[str, LoadedModel] = {}
        self._fingerprints: dict[str, str] = {}
        if cache is True:
            cache = StageCache()
        self.cache = cache or None
        self._codec: Any = None
        self._tokenizer: Any = None
        self.folder: Path | None = None
        self.manifest: dict[str, Any] = {}
        src = Path(self.source).expanduser()
        if src.is_dir():
            self.folder = src
            if (src / MANIFEST).is_file():
                self.manifest = json.loads((src / MANIFEST).read_text())
        elif self.source != "suno" and (os.path.isabs(self.source) or self.source.startswith((".", "~"))
                                        or self.source.count("/") != 1):  # hub repo ids are "owner/name"
            raise CheckpointError(f"Model folder {self.source} does not exist. Pass an existing folder, 'suno', "
                                  "or a hub repo id such as suno/bark-small.")
        self.presets_dir = Path(presets_dir) if presets_dir else self._folder_path("voices")
        self.codec_checkpoint = codec_checkpoint or self._folder_path(C.ENCODEC_CHECKPOINT_NAME)
        self.tokenizer_source = tokenizer or self._folder_path("tokenizer")

    # ---- where things come from ---------------------------------------------------------------
    def _folder_path(self, name: str) -> Path | None:
        if self.folder is None:
            return None
        name = self.manifest.get("files", {}).get(name, name)
        path = self.folder / name
        return path if path.exists() else None

    @property
    def untrained(self) -> bool:
        return bool(self.manifest.get("untrained"))

    def semantic_cap(self, max_gen_duration_s: float | None) -> float | None:
        """The caller's cap on a take's length, else the model folder's own (the tiny set keeps takes short)."""
        if max_gen_duration_s is not None:
            return max_gen_duration_s
        cap = self.manifest.get("max_gen_duration_s")
        return float(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None

    def device_for(self, stage: str) -> str:
        dev = _per_stage(self._device, stage, "auto")
        dev = best_device() if dev in (None, "auto") else str(dev)
        if stage == "codec" and dev.startswith("mps"):
            dev = "cpu"  # EnCodec does not run on MPS
        return dev

    def dtype_for(self, stage: str) -> torch.dtype:
        if stage == "codec":
            return torch.float32
        return resolve_dtype(_per_stage(self._dtype, stage, None), self.device_for(stage))

    def decoder_for(self, stage: str) -> str:
        """'fast' or 'eager': which decode loop the text and coarse stages use on their device."""
        return resolve_decoder(_per_stage(self.decoder, stage, "auto"), self.device_for(stage))

    def size_for(self, stage: str) -> str:
        return _per_stage(self.size, stage, "large")

    def _stage_files(self, stage: str) -> list[Path]:
        """The files a stage's weights come from, found without loading them."""
        if self.folder is not None and (self.folder / "config.json").is_file() or (
                self.folder is None and self.source != "suno"):
            config, weights = resolve_hf_files(self.folder or self.source, cache_dir=self.cache_dir,
                                               local_files_only=self.local_files_only)
            return [config, *weights]
        name = self.manifest.get("files", {}).get(stage) or suno_filename(stage, self.size_for(stage))
        if self.folder is not None:
            return [self.folder / name]
        return [hub_file(C.HUB_REPO, name, cache_dir=self.cache_dir, local_files_only=self.local_files_only,
                         what=f"Suno's {stage} model", local=name)]

    def fingerprint(self, stage: str) -> str:
        """Identity of a stage's weights (text/coarse/fine/codec) for cache keys, without loading them."""
        if stage not in self._fingerprints:
            if stage == "codec":
                files = [Path(self.codec_checkpoint)] if self.codec_checkpoint else []
                parts = [file_fingerprint(f) for f in files] or [f"pretrained:{C.ENCODEC_CHECKPOINT_NAME}"]
            else:
                parts = [stage, *(file_fingerprint(f) for f in self._stage_files(stage))]
            self._fingerprints[stage] = "|".join(parts)
        return self._fingerprints[stage]

    def _load(self, stage: str) -> LoadedModel:
        device = "cpu" if self.offload else self.device_for(stage)
        dtype = self.dtype_for(stage)
        size = self.size_for(stage)
        if self.folder is not None and (self.folder / "config.json").is_file():
            return self._load_hf(str(self.folder), stage, device, dtype)
        if self.folder is not None:
            files = self.manifest.get("files", {})
            name = files.get(stage) or suno_filename(stage, size)
            path = self.folder / name
            if not path.is_file():
                raise CheckpointError(f"{path} is missing: the folder {self.folder} has no {stage} checkpoint "
                                      f"({name}). Copy it there or pass models='suno' to download it.")
            return load_suno_checkpoint(path, stage, device=device, dtype=dtype, model_id=str(path))
        if self.source == "suno":
            name = suno_filename(stage, size)
            path = hub_file(C.HUB_REPO, name, cache_dir=self.cache_dir, local_files_only=self.local_files_only,
                            what=f"Suno's {stage} model", local=name)
            return load_suno_checkpoint(path, stage, device=device, dtype=dtype, model_id=f"{C.HUB_REPO}/{name}")
        return self._load_hf(self.source, stage, device, dtype)

    def _load_hf(self, repo: str, stage: str, device: str, dtype: torch.dtype) -> LoadedModel:
        config, state, checksum = load_hf_stage(repo, stage, cache_dir=self.cache_dir,
                                                local_files_only=self.local_files_only)
        model = load_model_weights(stage, config, state, source=repo, device=device, dtype=dtype)
        return LoadedModel(model=model, stage=stage, config=config, model_id=f"{repo}:{stage}", checksum=checksum)

    # ---- public accessors ---------------------------------------------------------------------
    def get(self, stage: str) -> LoadedModel:
        """The loaded model of a stage (text/coarse/fine), loading it on first use."""
        if stage not in MODEL_STAGES:
            raise ValueError(f"Unknown stage {stage!r}; use one of {MODEL_STAGES}.")
        if stage not in self._loaded:
            self._loaded[stage] = self._load(stage)
            lm = self._loaded[stage]
            log.info("loaded %s model %s (%s)", stage, lm.model_id, "untrained" if lm.untrained else "trained")
        return self._loaded[stage]

    def is_loaded(self, stage: str) -> bool:
        """Whether a stage's weights are in memory (front ends use it to announce downloads and loads)."""
        return self._codec is not None if stage == "codec" else stage in self._loaded

    def preload(self) -> BarkModels:
        for stage in MODEL_STAGES:
            self.get(stage)
        _ = self.codec, self.tokenizer
        return self

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            src = os.fspath(self.tokenizer_source) if self.tokenizer_source else None
            self._tokenizer = load_tokenizer(src, cache_dir=self.cache_dir, local_files_only=self.local_files_only)
        return self._tokenizer

    @property
    def codec(self) -> Any:
        if self._codec is None:
            device = "cpu" if self.offload else self.device_for("codec")
            self._codec = load_codec(device=device, checkpoint=self.codec_checkpoint)
        return self._codec

    def voice(self, spec: Any) -> Voice | None:
        """Resolve a voice spec with this model set's preset folder and hub cache."""
        return load_voice(spec, presets_dir=self.presets_dir, cache_dir=self.cache_dir,
                          local_files_only=self.local_files_only)

    @contextlib.contextmanager
    def use(self, stage: str) -> Iterator[Any]:
        """Yield the stage's model on its device; with offload, move it there and back."""
        target = self.codec if stage == "codec" else self.get(stage)
        module = target if stage == "codec" else target.model
        if self.offload:
            module.to(self.device_for(stage))
        try:
            yield target
        finally:
            if self.offload:
                release(module)  # the static cache and graph belong to the device the model leaves
                module.to("cpu")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def unload(self, stage: str | None = None) -> None:
        """Free one stage's model (or all) so memory goes back to other work."""
        for name in [stage] if stage else [*MODEL_STAGES, "codec"]:
            if name == "codec":
                self._codec = None
            else:
                self._loaded.pop(name, None)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()



@contextlib.contextmanager
def cpu_threads(models: BarkModels, threads: int | None = None) -> Iterator[int]:
    """Run a block with torch's CPU thread count chosen for ``models``, then restore the previous count.

    ``None`` chooses: one thread for an untrained tiny set, whose decode steps are too small to
    share between threads (on a busy 2-core machine a semantic step took 8 ms with torch's two
    threads and 0.8 ms with one; ``benchmarks/speed.py --threads`` measures it), else torch's default.
    The command line uses it; the library never changes the thread count by itself.
    """
    before = torch.get_num_threads()
    chosen = int(threads) if threads is not None else (1 if models.untrained else before)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)
