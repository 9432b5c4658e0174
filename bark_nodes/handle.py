"""The object on a BARK_MODELS link: bark_core's ``BarkModels`` plus ComfyUI model management.

bark_core loads each stage's weights on first use. Inside ComfyUI we load them onto ComfyUI's
offload device (normally the CPU) and wrap each module in a ``ModelPatcher``; before a stage runs,
``load_models_gpu`` moves it to the compute device and may unload other models (image, video) to
make room, and "Unload models" / ``POST /free`` moves ours back. Outside ComfyUI there is no
manager: the models stay on the device bark_core picked.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bark_core import BarkModels, CheckpointError, ParameterError, StageCache, write_tiny_model_set
from bark_core import constants as C
from bark_core.models import PRECISION_NAMES, check_int8, resolve_dtype, suno_filename
from bark_core.sampling import release, resolve_decoder
from bark_core.stages import MANIFEST

from . import _comfy

log = logging.getLogger("bark_nodes")

HUB_SOURCES = ("suno", "suno/bark-small", "suno/bark")
TINY_CHOICE = "tiny (offline test set)"  # written into models/bark/tiny on first use
TINY_FOLDER = "tiny"
HUB_NOTES = {
    "suno": "Suno's original .pt checkpoints from the hub repo suno/bark (several GB per stage for large, "
            "less for small)",
    "suno/bark-small": "the transformers-format repo suno/bark-small (~1.7 GB)",
    "suno/bark": "the transformers-format repo suno/bark (~4.5 GB)",
}
# which model a node stage needs
STAGE_MODEL = {"semantic": "text", "coarse": "coarse", "fine": "fine", "decode": "codec"}
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = PRECISION_NAMES  # bark_core's list, so a new precision reaches the loader by itself
DOWNLOAD_DIRS = ("models/bark/hub", "huggingface cache")
STAGE_CACHES = ("memory", "disk", "off")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # transformers-format repos: one file, all stages
ENCODEC_MB = 93


def model_folders() -> dict[str, Path]:
    """Model sets under ``models/bark/`` (each sub-folder with checkpoints or a manifest)."""
    found: dict[str, Path] = {}
    for base in _comfy.bark_dirs():
        if not base.is_dir():
            continue
        for sub in sorted(p for p in base.iterdir() if p.is_dir()):
            if sub.name in (_comfy.VOICES_SUBDIR, _comfy.HUB_SUBDIR) or sub.name.startswith("."):
                continue
            if (sub / MANIFEST).is_file() or (sub / "config.json").is_file() or any(sub.glob("*.pt")):
                found.setdefault(sub.name, sub)
    return found


def model_choices() -> list[str]:
    """Dropdown values: the hub sources first, the offline test set, then local folders."""
    return [*HUB_SOURCES, TINY_CHOICE, *[name for name in model_folders() if name not in HUB_SOURCES]]


def tiny_folder() -> Path:
    """``models/bark/tiny``, holding the untrained offline set; written (once, logged) when missing.

    A ComfyUI custom-node install has no ``bark-core`` command on the PATH, so the loader makes the
    set itself: everything runs end to end without a download, and its audio is noise.
    """
    folder = _comfy.bark_dirs()[0] / TINY_FOLDER
    if not (folder / MANIFEST).is_file():
        log.warning("Bark: writing the tiny offline test set (untrained random weights, about 100 MB) into %s; "
                    "once only. It checks a graph end to end without downloads; its audio is noise.", folder)
        write_tiny_model_set(folder)
    return folder


def resolve_source(name: str) -> str | Path:
    if name in HUB_SOURCES:
        return name
    if name == TINY_CHOICE:
        return tiny_folder()
    folders = model_folders()
    if name in folders:
        return folders[name]
    where = ", ".join(str(p) for p in _comfy.bark_dirs())
    raise CheckpointError(f"No Bark model folder named {name!r} under {where}. Put a model set there (a folder "
                          "with text/coarse/fine checkpoints) or pick a hub source such as 'suno'.")


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was chosen but this machine has no usable CUDA GPU; pick auto or cpu.")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError("device 'mps' was chosen but MPS is not available here; pick auto or cpu.")
    return torch.device(name)


COMFY_HINT = (" In ComfyUI: copy the model files into a folder under models/bark/ and pick it in Bark Model "
              "Loader, or switch 'offline' off where the hub is reachable.")


def with_comfy_hint(exc: CheckpointError) -> CheckpointError:
    """bark_core's message plus where ComfyUI users put files (its own hint names Python and CLI options)."""
    return exc if COMFY_HINT in str(exc) else CheckpointError(str(exc) + COMFY_HINT)


# ---- stage cache ---------------------------------------------------------------------------------

_CACHES: dict[str, StageCache] = {}


def stage_cache(mode: str) -> StageCache | None:
    """The process-wide stage cache for a loader setting, shared by every loader node and prompt.

    It lives at module level, not in the handle: when ComfyUI drops its own output cache (Free
    memory, a changed loader), the next handle still finds the stages computed before. Keys include
    the weights' fingerprint, precision and device, so model sets never mix.
    """
    if mode not in STAGE_CACHES:
        raise ParameterError(f"Unknown stage_cache {mode!r}; use one of {', '.join(STAGE_CACHES)}.")
    if mode == "off":
        return None
    if mode not in _CACHES:
        _CACHES[mode] = StageCache(folder=False if mode == "memory" else _comfy.stage_cache_dir())
    return _CACHES[mode]


# ---- downloads: never a silent multi-GB fetch ---------------------------------------------------

def _gb(n: int | None) -> str:
    if n is None:
        return "size unknown"
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _remote_size(repo: str, filename: str) -> int | None:
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_url

        return get_hf_file_metadata(hf_hub_url(repo, filename), timeout=10).size
    except Exception:  # unreachable or offline: the download itself will say so
        return None


def _is_cached(repo: str, filename: str, cache_dir: Path | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo, filename, cache_dir=cache_dir), str)
    except Exception:
        return False


def hub_offline() -> bool:
    """HF_HUB_OFFLINE is set: nothing will be downloaded, so nothing is announced."""
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:
        return False


def hub_files(source: str, model_name: str, size: str) -> list[tuple[str, str]]:
    """(repo, file) pairs a stage's model needs from the hub."""
    if source == "suno":
        return [(C.HUB_REPO, suno_filename(model_name, size))]
    return [(source, "config.json"), (source, HF_WEIGHT_FILES[0])]


def announce_downloads(source: str, model_name: str, size: str, cache_dir: Path | None) -> list[str]:
    """Log (warning level) every hub file about to be downloaded for a stage: repo, file, size, folder.

    Returns the log lines (empty when everything is on disk already).
    """
    lines = []
    where = str(cache_dir) if cache_dir else "the huggingface cache (HF_HOME)"
    for repo, filename in hub_files(source, model_name, size):
        if _is_cached(repo, filename, cache_dir):
            continue
        if filename == "config.json":
            continue  # a few kB; the weights line below says what matters
        line = (f"Bark: downloading {repo}/{filename} ({_gb(_remote_size(repo, filename))}) for the {model_name} "
                f"model into {where}; this happens once, later runs read it from disk. Progress is shown in "
                "this console. To avoid it, put the files in a folder under models/bark/ and pick that folder.")
        log.warning(line)
        lines.append(line)
    return lines


def announce_codec_download(checkpoint: Path | None) -> str | None:
    """EnCodec (~93 MB) comes from Meta's server through torch.hub unless a local file is used."""
    if checkpoint is not None:
        return None
    hub_dir = Path(torch.hub.get_dir()) / "checkpoints"
    if (hub_dir / C.ENCODEC_CHECKPOINT_NAME).is_file():
        return None
    line = (f"Bark: downloading the EnCodec weights {C.ENCODEC_CHECKPOINT_NAME} (~{ENCODEC_MB} MB) from "
            f"{C.ENCODEC_CHECKPOINT_URL} into {hub_dir}; once only. To avoid it, put that file into models/bark/.")
    log.warning(line)
    return line


def _gone(model_name: str) -> None:
    """The handle that managed these models was dropped: nothing to place them with."""


@dataclass(eq=False)
class BarkHandle:
    """Models for the stage nodes. A stage's model is loaded and put on the device only when the stage
    really runs (bark_core calls ``before_use``; a stage-cache hit never does), so a cached run loads
    no weights and evicts nothing from VRAM."""

    models: BarkModels
    source: str
    load_device: torch.device | None = None      # None: not managed by ComfyUI
    offload_device: torch.device | None = None
    patchers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a weak link back, so dropping the handle (ComfyUI freed its cache) frees the weights at once
        place = weakref.WeakMethod(self._place)
        self.models.before_use = lambda model_name: (place() or _gone)(model_name)

    @property
    def managed(self) -> bool:
        return self.load_device is not None

    def _module(self, model_name: str) -> torch.nn.Module:
        if model_name == "codec":
            if not self.models.is_loaded("codec"):
                announce_codec_download(self.models.codec_checkpoint)
            return self.models.codec
        if (self.source in HUB_SOURCES and not self.models.is_loaded(model_name) and not self.models.local_files_only
                and not hub_offline()):
            announce_downloads(self.source, model_name, self.models.size_for(model_name), self.models.cache_dir)
        return self.models.get(model_name).model

    def _place(self, *model_names: str) -> None:
        """Load these models (announcing downloads) and, in ComfyUI, move them onto the compute device."""
        wanted = []
        for name in model_names:
            try:
                module = self._module(name)
            except CheckpointError as exc:
                raise with_comfy_hint(exc) from exc
            if not self.managed:
                continue
            if name not in self.patchers:  # unloading frees the fast decoder's static cache and graphs too
                self.patchers[name] = _comfy.make_patcher(module, self.load_device, self.offload_device,
                                                          on_unload=lambda module=module: release(module))
            wanted.append(self.patchers[name])
        _comfy.load_on_device(wanted)  # all at once, so loading one cannot evict another

    @contextlib.contextmanager
    def hinted(self) -> Iterator[BarkModels]:
        """The models, for a node's bark_core calls; a missing file's error then says where ComfyUI users put it."""
        try:
            yield self.models
        except CheckpointError as exc:
            hinted = with_comfy_hint(exc)
            if hinted is exc:
                raise
            raise hinted from exc

    def prepare(self, *stages: str) -> BarkModels:
        """Load the models these node stages need now (semantic/coarse/fine/decode), e.g. to warm up.

        Stage nodes do not call it: bark_core places each model when its stage runs (see above).
        """
        self._place(*(STAGE_MODEL.get(stage, stage) for stage in stages))
        return self.models

    def voice(self, spec: Any) -> Any:
        """Resolve a voice with this model set's presets folder and hub cache."""
        try:
            return self.models.voice(spec)
        except CheckpointError as exc:
            raise with_comfy_hint(exc) from exc

    def describe(self) -> str:
        where = f"{self.load_device} (managed by ComfyUI)" if self.managed else "bark_core's device choice"
        flag = " UNTRAINED" if self.models.untrained else ""
        cache = self.models.cache
        hits = "" if cache is None else f", stage cache {cache.stats.hits} hit(s) / {cache.stats.misses} miss(es)"
        return f"Bark models {self.source}{flag} on {where}{hits}"


def open_models(source: str, *, text_size: str = "large", coarse_size: str = "large", fine_size: str = "large",
                precision: str = "auto", device: str = "auto", download_dir: str = DOWNLOAD_DIRS[0],
                offline: bool = False, stage_cache_mode: str = "off") -> BarkHandle:
    """Build a handle from the loader node's settings; loads nothing yet (stages load on first use)."""
    if device not in DEVICES:
        raise ParameterError(f"Unknown device {device!r}; use one of {', '.join(DEVICES)}.")
    if precision not in PRECISIONS:
        raise ParameterError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    where = resolve_source(source)
    comfy_dev = _comfy.comfy_devices()
    load_device: torch.device | None = None
    offload_device: torch.device | None = None
    if comfy_dev is not None:
        load_device = comfy_dev[0] if device == "auto" else _device(device)
        offload_device = comfy_dev[1] if load_device.type != "cpu" else torch.device("cpu")
        bark_device: str = str(offload_device)
    else:
        bark_device = "auto" if device == "auto" else str(_device(device))
    dtype: Any = None if precision == "auto" else precision
    if dtype is None and load_device is not None:  # bark_core's "auto" would look at the offload device
        dtype = resolve_dtype(None, str(load_device))
    if dtype == "int8" and load_device is not None:  # the weights wait on the CPU but run on ComfyUI's device
        check_int8(load_device, "precision")
    cache = stage_cache(stage_cache_mode)
    cache_dir = None
    presets_dir = None
    codec_checkpoint = None
    base = _comfy.bark_dirs()[0]
    shared_voices = base / _comfy.VOICES_SUBDIR
    if isinstance(where, Path) and not (where / _comfy.VOICES_SUBDIR).is_dir() and shared_voices.is_dir():
        presets_dir = shared_voices  # a model folder without its own presets uses models/bark/voices/
    if isinstance(where, str):
        if download_dir == DOWNLOAD_DIRS[0]:
            cache_dir = base / _comfy.HUB_SUBDIR
        if shared_voices.is_dir():
            presets_dir = shared_voices
        shared_codec = base / C.ENCODEC_CHECKPOINT_NAME
        if shared_codec.is_file():
            codec_checkpoint = shared_codec  # models/bark/encodec_24khz-d7cc33bc.th before torch.hub
        log.info("Bark: using %s (sizes text=%s coarse=%s fine=%s); weights not yet in %s are downloaded "
                 "on first use, each announced with its size%s", HUB_NOTES[where], text_size, coarse_size, fine_size,
                 cache_dir or "the huggingface cache", " (offline: no downloads)" if offline else "")
    # ComfyUI parks the models on its offload device and moves them to the GPU per stage, so pick the
    # decode loop for the device the stages run on, not the one the weights wait on
    decoder = resolve_decoder("auto", str(load_device)) if load_device is not None else "auto"
    models = BarkModels(where, size={"text": text_size, "coarse": coarse_size, "fine": fine_size},
                        device=bark_device, dtype=dtype, decoder=decoder, cache_dir=cache_dir,
                        local_files_only=True if offline else None, presets_dir=presets_dir,
                        codec_checkpoint=codec_checkpoint, cache=cache)
    if models.untrained:
        log.warning("Bark: %s is an UNTRAINED model set: it runs end to end but makes noise.", where)
    return BarkHandle(models=models, source=str(source), load_device=load_device, offload_device=offload_device)
