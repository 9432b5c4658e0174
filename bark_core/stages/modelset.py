"""The model set: where each stage's weights come from, and where and how each stage runs.

``BarkModels`` loads each stage's weights once, on demand, on the device and precision chosen for
that stage, and can park idle stages on the CPU (offload) so a small GPU holds one model at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from .. import constants as C
from ..cache import StageCache
from ..errors import CheckpointError, ParameterError
from ..hub import file_fingerprint, hub_file, public_file_id
from ..limits import loads_json
from ..models.audio_semantic import AudioSemanticEncoder, load_audio_semantic
from ..models.codec import load_codec
from ..models.device import Precision, best_device, check_device, resolve_precision, return_freed_memory
from ..models.hf_files import inside, safe_file_name
from ..models.hf_format import load_hf_stage, resolve_hf_files
from ..models.hubert import HUBERT_REPO
from ..models.quant import check_int8
from ..models.suno import LoadedModel, load_model_weights, load_suno_checkpoint, suno_filename
from ..models.tokenizer import load_tokenizer
from ..sampling.fast import release, resolve_decoder
from ..voices import Voice, load_voice

log = logging.getLogger(__name__)

MANIFEST = C.MODEL_MANIFEST
MODEL_STAGES = ("text", "coarse", "fine")


def _read_manifest(path: Path) -> dict[str, Any]:
    """A model folder's manifest, type-checked: which file holds which stage, and whether it is untrained."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Cannot read {path}: {exc.strerror or exc}. Fix its permissions or delete it.") from exc
    data = loads_json(blob, f"model manifest {path}", error=CheckpointError)
    files = data.get("files", {}) if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise CheckpointError(f"{path} is damaged: it must be a JSON object whose 'files' maps names to file names "
                              f"inside the folder. Delete it (write a new set with bark-core tiny-models) or fix it.")
    if not isinstance(data.get("untrained", False), bool):
        raise CheckpointError(f"{path} is damaged: 'untrained' must be true or false.")
    return data


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
    ``dtype``: "fp32", "fp16", "bf16" (weights stored so), "int8" (linear weights int8 per output
    channel, the rest bf16; quantised once at load), "autocast" (Suno's CUDA mode: fp32 weights,
    bf16 autocast, TF32) or "auto" (bf16 on CUDA, fp32 elsewhere); see :mod:`bark_core.models.device`.
    ``decoder``: "auto" (the fast static-cache decoder on CUDA, the eager reference elsewhere),
    "fast" or "eager"; see :mod:`bark_core.sampling.fast`.
    ``before_use``: called with the model's name (text/coarse/fine/codec) each time a stage is about
    to run on it, i.e. only when the stage cache could not serve the result. A host that manages
    device memory (ComfyUI) loads and places the weights there, so a cached run loads nothing.
    """

    def __init__(self, models: str | os.PathLike = "suno", *, size: str | Mapping[str, str] = "large",
                 device: str | Mapping[str, str] | None = None, dtype: Any = None, offload: bool = False,
                 cache_dir: str | os.PathLike | None = None, local_files_only: bool | None = None,
                 presets_dir: str | os.PathLike | None = None, codec_checkpoint: str | os.PathLike | None = None,
                 tokenizer: str | os.PathLike | None = None, cache: Any = None, decoder: str = "auto",
                 before_use: Callable[[str], None] | None = None):
        resolve_decoder(_per_stage(decoder, "text", "auto"), "cpu")  # reject a bad name now, not mid-take
        if not isinstance(models, (str, os.PathLike)):
            raise ParameterError(f"models must be 'suno', a hub repo id or a folder path, got {type(models).__name__}.")
        for stage in (*MODEL_STAGES, "codec"):  # bad devices, precisions and sizes fail here, before any load
            check_device(_per_stage(device, stage, "auto"))  # a missing GPU is reported now, not after loading
            if stage != "codec":
                precision = resolve_precision(_per_stage(dtype, stage, None), "cpu")
                if precision.quant == "int8":  # no int8 kernel on that device: say so before any load
                    stage_device = _per_stage(device, stage, "auto")
                    check_int8(best_device() if stage_device in (None, "auto") else stage_device, f"dtype of {stage}")
                if _per_stage(size, stage, "large") not in C.SUNO_CHECKPOINT_FILES:
                    raise ParameterError(f"Unknown model size {_per_stage(size, stage, 'large')!r:.40} for the "
                                         f"{stage} stage; use 'large' or 'small'.")
        self.decoder = decoder
        self.before_use = before_use
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
        self._semantic_encoders: dict[tuple[str | None, str | None], AudioSemanticEncoder] = {}
        self._tokenizer: Any = None
        self.folder: Path | None = None
        self.manifest: dict[str, Any] = {}
        src = Path(self.source).expanduser()
        if src.is_dir():
            self.folder = src
            if (src / MANIFEST).is_file():
                self.manifest = _read_manifest(src / MANIFEST)
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
        path = self._manifest_file(name, name)
        return path if path.exists() else None

    def _manifest_file(self, key: str, default: str) -> Path:
        """A file of the model folder, as the manifest names it; never a file outside the folder."""
        assert self.folder is not None
        name = safe_file_name(self.manifest.get("files", {}).get(key) or default, f"folder {self.folder}",
                          f"{MANIFEST} (files.{key})")
        path = self.folder / name
        return inside(self.folder, path, f"{MANIFEST}'s files.{key}") if path.exists() or path.is_symlink() else path

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

    def precision_for(self, stage: str) -> Precision:
        """How a stage's weights are stored and run (EnCodec always in plain fp32)."""
        if stage == "codec":
            return Precision(torch.float32)
        return resolve_precision(_per_stage(self._dtype, stage, None), self.device_for(stage))

    def dtype_for(self, stage: str) -> torch.dtype:
        """The dtype a stage's weights are stored in (fp32 under autocast)."""
        return self.precision_for(stage).weights

    def precision_name(self, stage: str) -> str:
        """The precision part of a stage's cache key: autocast and plain fp32 never share entries."""
        return self.precision_for(stage).name

    def decoder_for(self, stage: str) -> str:
        """'fast' or 'eager': which decode loop the text and coarse stages use on their device."""
        return resolve_decoder(_per_stage(self.decoder, stage, "auto"), self.device_for(stage))

    def size_for(self, stage: str) -> str:
        return _per_stage(self.size, stage, "large")

    def _stage_files(self, stage: str, download: bool = True) -> list[Path]:
        """The files a stage's weights come from, found without loading them (downloaded only if asked)."""
        local_only = True if not download else self.local_files_only
        if self.folder is not None and (self.folder / "config.json").is_file() or (
                self.folder is None and self.source != "suno"):
            config, weights = resolve_hf_files(self.folder or self.source, cache_dir=self.cache_dir,
                                               local_files_only=local_only)
            return [config, *weights]
        name = suno_filename(stage, self.size_for(stage))
        if self.folder is not None:
            return [self._manifest_file(stage, name)]
        return [hub_file(C.HUB_REPO, name, cache_dir=self.cache_dir, local_files_only=local_only,
                         what=f"Suno's {stage} model", local=name)]

    def fingerprint(self, stage: str, *, download: bool = True) -> str:
        """Identity of a stage's weights (text/coarse/fine/codec) for cache keys, without loading them.

        ``download=False`` never fetches a hub file: it raises CheckpointError when one is not on disk
        yet (then nothing made with those weights can be in the cache either).
        """
        if stage not in self._fingerprints:
            if stage == "codec":
                files = [Path(self.codec_checkpoint)] if self.codec_checkpoint else []
                parts = [file_fingerprint(f) for f in files] or [f"pretrained:{C.ENCODEC_CHECKPOINT_NAME}"]
            else:
                parts = [stage, *(file_fingerprint(f) for f in self._stage_files(stage, download))]
            self._fingerprints[stage] = "|".join(parts)
        return self._fingerprints[stage]

    def _load(self, stage: str) -> LoadedModel:
        device = "cpu" if self.offload else self.device_for(stage)
        dtype = self.dtype_for(stage)
        quant = self.precision_for(stage).quant
        size = self.size_for(stage)
        if self.folder is not None and (self.folder / "config.json").is_file():
            return self._load_hf(str(self.folder), stage, device, dtype, quant)
        if self.folder is not None:
            path = self._manifest_file(stage, suno_filename(stage, size))
            if not path.is_file():
                raise CheckpointError(f"{path} is missing: the folder {self.folder} has no {stage} checkpoint "
                                      f"({path.name}). Copy it there or pass models='suno' to download it.")
            return load_suno_checkpoint(path, stage, device=device, dtype=dtype, quant=quant)  # id: name + hash
        if self.source == "suno":
            name = suno_filename(stage, size)
            path = hub_file(C.HUB_REPO, name, cache_dir=self.cache_dir, local_files_only=self.local_files_only,
                            what=f"Suno's {stage} model", local=name)
            return load_suno_checkpoint(path, stage, device=device, dtype=dtype, model_id=f"{C.HUB_REPO}/{name}",
                                        quant=quant)
        return self._load_hf(self.source, stage, device, dtype, quant)

    def _load_hf(self, repo: str, stage: str, device: str, dtype: torch.dtype, quant: str | None = None
                 ) -> LoadedModel:
        config, state, checksum = load_hf_stage(repo, stage, cache_dir=self.cache_dir,
                                                local_files_only=self.local_files_only,
                                                cast=None if dtype == torch.float32 else dtype)
        model = load_model_weights(stage, config, state, source=repo, device=device, dtype=dtype, quant=quant)
        # a hub repo id is public; a local folder is named by its last component and the weights' hash
        name = public_file_id(repo, checksum) if os.path.isdir(repo) else repo
        return LoadedModel(model=model, stage=stage, config=config, model_id=f"{name}:{stage}", checksum=checksum)

    # ---- public accessors ---------------------------------------------------------------------
    def get(self, stage: str) -> LoadedModel:
        """The loaded model of a stage (text/coarse/fine), loading it on first use."""
        if stage not in MODEL_STAGES:
            raise ParameterError(f"Unknown stage {stage!r}; use one of {MODEL_STAGES}.")
        if stage not in self._loaded:
            self._loaded[stage] = self._load(stage)
            lm = self._loaded[stage]
            log.info("loaded %s model %s (%s)", stage, lm.model_id, "untrained" if lm.untrained else "trained")
        return self._loaded[stage]

    def is_loaded(self, stage: str) -> bool:
        """Whether a stage's weights are in memory (front ends use it to announce downloads and loads)."""
        if stage == "hubert":
            return bool(self._semantic_encoders)
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

    def semantic_encoder(self, quantizer: str | os.PathLike | None = None,
                         hubert: str | os.PathLike | None = None) -> AudioSemanticEncoder:
        """HuBERT + quantizer that turn a recording into semantic tokens (voice cloning), loaded on first use.

        Defaults: this model folder's ``hubert/`` and quantizer when it has them (the tiny set does),
        else facebook/hubert-base-ls960 and quantifier_hubert_base_ls960_14.pth from the hub. One pair is
        kept in memory at a time (HuBERT base alone is about 380 MB); ``unload("hubert")`` frees it.
        """
        key = (None if hubert is None else os.fspath(hubert), None if quantizer is None else os.fspath(quantizer))
        if key not in self._semantic_encoders:
            self._semantic_encoders.clear()
            self._semantic_encoders[key] = load_audio_semantic(
                hubert if hubert is not None else (self._folder_path("hubert") or HUBERT_REPO), quantizer,
                default_quantizer=self._folder_path("quantizer"), folder=self.folder,
                device="cpu" if self.offload else self.device_for("hubert"), cache_dir=self.cache_dir,
                local_files_only=self.local_files_only)
        return self._semantic_encoders[key]

    def voice(self, spec: Any) -> Voice | None:
        """Resolve a voice spec with this model set's preset folder and hub cache."""
        return load_voice(spec, presets_dir=self.presets_dir, cache_dir=self.cache_dir,
                          local_files_only=self.local_files_only)

    @contextlib.contextmanager
    def use(self, stage: str) -> Iterator[Any]:
        """Yield the stage's model on its device, in its precision; with offload, move it there and back."""
        if self.before_use is not None:
            self.before_use(stage)
        target = self.codec if stage == "codec" else self.get(stage)
        module = target if stage == "codec" else target.model
        if self.offload:
            module.to(self.device_for(stage))
        try:
            with self.precision_for(stage).context(self.device_for(stage)):
                yield target
        finally:
            if self.offload:
                release(module)  # the static cache and graph belong to the device the model leaves
                module.to("cpu")
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            if torch.device(self.device_for(stage)).type == "cpu":
                return_freed_memory()  # a stage's temporaries, so the next stage starts from what is really held

    def unload(self, stage: str | None = None) -> None:
        """Free one stage's model (or all) so memory goes back to other work."""
        for name in [stage] if stage else [*MODEL_STAGES, "codec", "hubert"]:
            if name == "codec":
                self._codec = None
            elif name == "hubert":
                self._semantic_encoders.clear()
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
