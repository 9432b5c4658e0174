"""The node pack inside a real ComfyUI server: loading, every example workflow, progress, interrupt, errors.

Runs only where ``COMFYUI_DIR`` points at a ComfyUI checkout (ComfyUI is not on PyPI, so CI cannot
install it); ``COMFYUI_PYTHON`` names the python of the server's venv (default: this one). The
server runs headless on 127.0.0.1 with ``--cpu``, on the tiny untrained model set written into its
``models/bark/tiny``; the example workflows name the real model ("suno") and are posted with the
loader switched to "tiny" and takes cut to one second. See docs/comfyui.md for the server venv.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from comfyui_server import (
    PACK_LINK_NAME,
    PACK_NODES,
    REPO,
    ComfyServer,
    PromptRejected,
    api_to_ui,
    error_messages,
    ffprobe,
    load_api_workflow,
    node_text,
    ui_to_api,
)

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON")
pytestmark = pytest.mark.skipif(
    not COMFYUI_DIR,
    reason="real-server test: set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its venv's python); "
           "ComfyUI is not on PyPI, see docs/comfyui.md",
)

EXAMPLES = sorted((REPO / "examples" / "comfyui").glob("*.json"))
TEMPLATES = REPO / "example_workflows"
TAKE_S = 1.0
TINY = {"models": "tiny (offline test set)"}  # the loader's offline choice (the set is already in models/bark/tiny)
REFERENCE_WAV = "bark_reference.wav"  # the voice-from-audio example's Load Audio file
CHECKED: list[str] = []  # one line per labelled file checked, printed at the end


def write_reference_wav(path: Path) -> None:
    """A short spoken WAV for Load Audio: espeak-ng where installed, else a synthetic voiced signal."""
    espeak = shutil.which("espeak-ng")
    if espeak:
        import subprocess

        subprocess.run([espeak, "-w", str(path), "Hello, this is my own voice, recorded for a test."], check=True)
        return
    import wave

    import numpy as np

    rate = 22050
    t = np.arange(int(rate * 2.0)) / rate
    phase = 2 * np.pi * np.cumsum(130 + 15 * np.sin(2 * np.pi * 0.8 * t)) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 10)) * (0.5 * (1 + np.sin(2 * np.pi * 4 * t))) ** 2 * 0.2
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path):
    base = tmp_path_factory.mktemp("comfyui")
    shutil.copytree(tiny_dir, base / "models" / "bark" / "tiny")
    (base / "input").mkdir(parents=True, exist_ok=True)
    write_reference_wav(base / "input" / REFERENCE_WAV)
    srv = ComfyServer.start(COMFYUI_DIR, base, python=COMFYUI_PYTHON)
    try:
        yield srv
    finally:
        srv.stop()
        print(f"\n--- ComfyUI log tail ({srv.log_path}) ---\n{srv.log_tail(25)}")


@pytest.fixture(scope="module")
def object_info(server: ComfyServer) -> dict[str, Any]:
    return server.object_info()


def _workflow(name: str, **overrides: Any) -> dict[str, Any]:
    return load_api_workflow(REPO / "examples" / "comfyui" / f"{name}.json", loader=TINY, max_duration_s=TAKE_S,
                             **overrides)


def flac_info(path: Path) -> tuple[int, int, int]:
    """(sample rate, channels, total samples) from a FLAC file's STREAMINFO block."""
    data = path.read_bytes()[:42]
    assert data[:4] == b"fLaC", f"{path} is not FLAC"
    bits = int.from_bytes(data[18:26], "big")  # 20 bits rate, 3 channels-1, 5 bps-1, 36 samples
    return bits >> 44, ((bits >> 41) & 0x7) + 1, bits & 0xF_FFFF_FFFF


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_object_info_lists_every_node(server: ComfyServer, object_info: dict[str, Any]):
    """An import failure only logs 'IMPORT FAILED' (even under --quick-test-for-ci): check the node list."""
    missing = PACK_NODES - set(object_info)
    assert not missing, f"nodes missing from /object_info: {sorted(missing)}\n{server.log_tail()}"
    extra = {k for k in object_info if k.startswith("Bark")} - PACK_NODES
    assert not extra, f"unexpected Bark nodes {extra}: update PACK_NODES and the docs"
    loader = object_info["BarkModelLoader"]["input"]["required"]["models"]
    assert "tiny" in loader[1]["options"] and loader[1]["options"][0] == "suno"
    assert TINY["models"] in loader[1]["options"]
    seed = object_info["BarkTextToSemantic"]["input"]["required"]["seed"]
    assert seed[1]["control_after_generate"] is True
    assert object_info["BarkDecode"]["output"] == ["AUDIO"]
    assert object_info["BarkModelLoader"]["category"] == "audio/Bark"


def test_node_docs_are_served(server: ComfyServer):
    """The pack's web directory (node docs) is registered as a ComfyUI extension folder."""
    status, body = server._request("GET", f"/extensions/{PACK_LINK_NAME}/docs/BarkGenerate.md")
    assert status == 200 and "Bark Generate" in str(body)


def workflow_in_file(path: Path, label: dict[str, Any]) -> dict[str, Any]:
    """The ComfyUI prompt/workflow a saved file carries: plain file tags, or the label's extra.comfyui."""
    tags = {k.lower(): v for k, v in ffprobe(path)["tags"].items()}
    if "prompt" in tags:
        return {k: json.loads(tags[k]) for k in ("prompt", "workflow") if k in tags}
    return dict((label.get("extra") or {}).get("comfyui") or {})


def check_labelled_file(path: Path, inputs: dict[str, Any], max_s: float, *,
                        known_origin: bool = True) -> dict[str, Any]:
    """A file from Bark Save Labelled Audio: rate, mono, duration, label tags (ffprobe and read_label), watermark.

    ``known_origin``: the audio reached the saver with its Bark provenance, so the label must say the
    tiny set is untrained; audio rebuilt by core nodes is foreign to Bark and gets the default code."""
    from bark_core.label.metadata import read_label
    from bark_core.label.watermark import detect

    probe = ffprobe(path)
    rate = 24000 if inputs["sample_rate"] == "keep" else int(inputs["sample_rate"])
    assert (probe["sample_rate"], probe["channels"]) == (rate, 1), probe
    assert 0.2 < probe["duration"] <= max_s, (path.name, probe["duration"], max_s)
    if path.suffix != ".wav":  # ffprobe sees the tags of compressed formats (WAV's sit in RIFF chunks)
        tags = {k.upper(): v for k, v in probe["tags"].items()}
        assert tags.get("AI_GENERATED") == "true" and "BARK_LABEL" in tags, sorted(tags)
    label = read_label(path)
    assert label and label["AI_GENERATED"] is True and label["generator"] == "bark_core", label
    codes = ("/algorithmicMedia",) if known_origin else ("/algorithmicMedia", "/trainedAlgorithmicMedia")
    assert label["digital_source_type"].endswith(codes), label  # the tiny set is untrained
    assert label["watermark"]["scheme"] == "bark_core-ss-v1" and label["review"]["human_review"]
    assert label["qc"]["schema"] == "bark_core.quality/1"
    assert workflow_in_file(path, label).get("prompt"), "the prompt is not in the file"
    found = detect(path)
    assert found.detected, (path.name, found)
    CHECKED.append(f"{path.relative_to(path.parents[1])}: {probe['codec']} {probe['sample_rate']} Hz mono "
                   f"{probe['duration']:.2f} s, label voice={label.get('voice')} seed={label.get('seed')} "
                   f"review={label['review']['human_review']}, watermark z={found.score:.1f}")
    return label


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs(server: ComfyServer, example: Path):
    t0 = time.monotonic()
    # Bark Script: one candidate per line on quality alone, as in tests/test_workflows.py
    prompt = load_api_workflow(example, loader=TINY, max_duration_s=TAKE_S, max_tries=1, check_script=False,
                               check_speaker=False)
    entry = server.run(prompt, timeout=400)
    files = server.output_files(entry)
    assert files, f"{example.name} saved nothing"
    from bark_core.label.watermark import detect

    for path in files:
        assert path.is_file() and path.stat().st_size > 0, path
        if path.suffix in (".wav", ".flac", ".mp3", ".ogg", ".opus", ".mp4", ".webm"):  # core savers too
            assert detect(path).detected, f"{example.name}: {path.name} is not watermarked"
        if path.suffix == ".flac":
            rate, channels, samples = flac_info(path)
            assert (rate, channels) == (24000, 1)
            if example.stem not in ("bark_long_form", "bark_script"):
                assert 0 < samples <= (TAKE_S + 0.1) * rate * 2 and samples % 320 == 0, samples
        elif path.suffix == ".png":
            assert png_size(path)[0] == 960
        elif path.suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as data:
                assert data.files
    labels = {}
    for node_id, node in prompt.items():
        if node["class_type"] != "BarkSaveLabelledAudio":
            continue
        saved = server.node_files(entry, node_id)
        assert len(saved) == 1 and saved[0].suffix == f".{node['inputs']['format']}", saved
        max_s = TAKE_S + 0.1
        if example.stem == "bark_long_form":  # "<n> chunk(s), <total> s in total, ..."
            first = node_text(entry, "6").split(",")
            n_chunks, total = int(first[0].split()[0]), float(first[1].split()[0])
            assert n_chunks >= 2 and total <= n_chunks * TAKE_S + (n_chunks - 1) * 0.25 + 0.01
            max_s = total + 0.1
            assert abs(ffprobe(saved[0])["duration"] - total) < 0.05
        elif example.stem == "bark_script":  # 5 speech segments of <= TAKE_S, pauses 0.8 + 0.8 + 1.2, 3 turn gaps
            max_s = 5 * TAKE_S + 2.8 + 3 * 0.35 + 0.5
        labels[node_id] = check_labelled_file(saved[0], node["inputs"], max_s)
    if example.stem == "bark_stagewise":
        stages = labels["7"]["stages"]  # the example gives each stage its own seed: the label keeps all three
        assert [stages[s]["seed"] for s in ("semantic", "coarse", "fine")] == [1, 2, 3], stages
        assert labels["7"]["voice"] == "v2/en_speaker_6" and labels["7"]["untrained"] is True
        assert labels["7"]["voice_origin"]["kind"] == "preset"
    elif example.stem == "bark_quality_review":
        assert labels["8"]["review"]["human_review"] == "approved"
        assert labels["8"]["review"]["reviewed_by"] == "Your Name"
        assert node_text(entry, "9").startswith("approved by Your Name")
    elif example.stem == "bark_voice_from_audio":
        origin = labels["6"]["voice_origin"]
        assert origin["kind"] == "audio" and origin["rights"]["who"] == "Your Name"
        assert origin["rights"]["right"] == "own voice" and origin["rights"]["when"] == "2024-05-01"
        assert origin["semantic"]["method"] == "hubert-quantizer"  # the full clone, the tiny set's quantizer
        assert origin["semantic"]["quantizer"]["file"] == "quantizer_tiny_untrained.pth"
    elif example.stem == "bark_label_detect":
        assert labels["7"]["text"] == labels["8"]["text"]  # include_text on
        assert node_text(entry, "5").startswith("Watermark DETECTED")
        assert node_text(entry, "6").startswith("Watermark not detected")  # the unlabelled take
    elif example.stem == "bark_long_form":
        assert labels["5"]["extra"]["chunks"] >= 2 and labels["5"]["seed"] == 2024
    elif example.stem == "bark_script":
        report = node_text(entry, "5")
        assert "Alice" in report and "Bob" in report and "lines passed" in report
        assert node_text(entry, "6").count("-->") == 4  # the SRT of the four placed lines
    print(f"{example.stem}: {time.monotonic() - t0:.1f} s, {[p.name for p in files]}")


def test_video_length_follows_audio(server: ComfyServer):
    """Audio Info's frame count sizes the image batch, so the video lasts as long as the speech."""
    ffprobe = shutil.which("ffprobe")
    wf = _workflow("bark_audio_to_video")
    wf["3"]["inputs"]["seed"] = 11
    wf["8"]["inputs"]["filename_prefix"] = "video/bark_len"
    entry = server.run(wf, timeout=400)
    video = next(p for p in server.output_files(entry) if p.suffix == ".mp4")
    if ffprobe is None:
        pytest.skip("ffprobe not installed: the video was written but its length is not checked")
    import subprocess

    probe = json.loads(subprocess.run([ffprobe, "-v", "error", "-show_streams", "-of", "json", str(video)],
                                      capture_output=True, text=True, check=True).stdout)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert set(streams) == {"video", "audio"}
    frames = int(streams["video"]["nb_frames"])
    audio_s = float(streams["audio"]["duration"])
    assert frames == math.ceil(round(audio_s * 24, 3)) or abs(frames / 24 - audio_s) < 0.1


def test_templates_match_api_examples(object_info: dict[str, Any]):
    """example_workflows/ (UI format, served as templates) queue exactly the API-format examples."""
    for api_path in EXAMPLES:
        ui_path = TEMPLATES / api_path.name
        assert ui_path.is_file(), f"{ui_path} missing"
        api = json.loads(api_path.read_text())
        ui = json.loads(ui_path.read_text())
        assert ui_to_api(ui, object_info) == api, f"{ui_path.name} and {api_path.name} differ"
        assert ui_to_api(api_to_ui(api, object_info), object_info) == api


def test_progress_over_websocket(server: ComfyServer):
    server.run(_workflow("bark_stagewise"), timeout=300)  # fills the executor cache for this graph
    ws = server.websocket()
    try:
        wf = _workflow("bark_stagewise")
        wf["4"]["inputs"]["seed"] = 99  # coarse re-runs; semantic comes from the executor cache
        wf["7"]["inputs"]["filename_prefix"] = "audio/bark_ws"
        prompt_id = server.queue(wf)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            msg = ws.recv(timeout=5)
            if msg is None:
                continue
            seen.append(msg)
            if msg["type"] in ("execution_success", "execution_error") and msg["data"].get("prompt_id") == prompt_id:
                break
        kinds = [m["type"] for m in seen]
        assert "execution_success" in kinds, kinds
        progress = [m["data"] for m in seen if m["type"] == "progress"]
        assert any(p["node"] == "4" and 0 < p["value"] <= p["max"] for p in progress), progress[:5]
        cached = [n for m in seen if m["type"] == "execution_cached" for n in m["data"]["nodes"]]
        assert "3" in cached and "4" not in cached, cached  # changing coarse re-runs coarse and below only
    finally:
        ws.close()
    assert server.wait(prompt_id, timeout=60)["status"]["status_str"] == "success"  # its history is written too


def test_interrupt_stops_a_stage_and_server_stays_healthy(server: ComfyServer):
    wf = {
        "1": {"class_type": "BarkModelLoader", "inputs": {**_workflow("bark_stagewise")["1"]["inputs"]}},
        "2": {"class_type": "BarkTextToSemantic",
              "inputs": {"models": ["1", 0], "text": "A long take that nobody stops by itself.", "seed": 5,
                         "temp": 0.7, "top_k": 0, "top_p": 1.0, "min_eos_p": 1.0, "max_duration_s": 0.0,
                         "allow_early_stop": False}},
        "3": {"class_type": "BarkSemanticToCoarse",
              "inputs": {"models": ["1", 0], "semantic": ["2", 0], "seed": 6, "temp": 0.7, "top_k": 0,
                         "top_p": 1.0, "max_coarse_history": 630, "sliding_window_len": 60}},
        "4": {"class_type": "BarkSaveArtifact", "inputs": {"artifact": ["3", 0], "filename_prefix": "bark/int"}},
    }
    ws = server.websocket()
    try:
        prompt_id = server.queue(wf)
        deadline = time.monotonic() + 120
        interrupted_at = None
        while time.monotonic() < deadline:
            msg = ws.recv(timeout=5)
            if msg and msg["type"] == "progress" and msg["data"].get("node") == "3":
                server.interrupt()
                interrupted_at = time.monotonic()
                break
        assert interrupted_at is not None, "the coarse stage never reported progress"
    finally:
        ws.close()
    entry = server.wait(prompt_id, timeout=120)
    assert time.monotonic() - interrupted_at < 30
    assert entry["status"]["status_str"] == "error"
    assert any(m["kind"] == "execution_interrupted" for m in error_messages(entry)), entry["status"]
    assert not list((server.output_dir / "bark").glob("int_*")), "the interrupted prompt still saved"
    server.run(_workflow("bark_generate"), timeout=300)  # healthy afterwards


def _expect_error(server: ComfyServer, prompt: dict[str, Any], node_type: str, exc_type: str, text: str) -> None:
    entry = server.wait(server.queue(prompt), timeout=300)
    assert entry["status"]["status_str"] == "error"
    errors = [m for m in error_messages(entry) if m["kind"] == "execution_error"]
    assert errors and errors[0]["node_type"] == node_type, errors
    assert errors[0]["type"].endswith(exc_type) and text in errors[0]["message"], errors[0]


def test_bad_inputs_show_clear_messages(server: ComfyServer):
    wf = _workflow("bark_stagewise")
    wf["3"]["inputs"]["text"] = "   "
    _expect_error(server, wf, "BarkTextToSemantic", "BadTextError", "Text is empty")

    (server.input_dir / "broken_voice.npz").write_bytes(b"this is not a zip file")
    voice_file = {"1": {"class_type": "BarkVoiceFile", "inputs": {"file": "broken_voice.npz"}},
                  "2": {"class_type": "BarkSaveVoice", "inputs": {"voice": ["1", 0], "name": "x",
                                                                  "destination": "output", "overwrite": False}}}
    _expect_error(server, voice_file, "BarkVoiceFile", "VoiceError", "cannot be read as a voice")

    gen = server.run(_workflow("bark_stagewise"), timeout=300)
    coarse_file = next(p for p in server.output_files(gen) if p.name.endswith(".coarse.npz"))
    load_wrong = {"1": {"class_type": "BarkLoadFine", "inputs": {"file": f"bark/{coarse_file.name} [output]"}},
                  "2": {"class_type": "BarkSaveArtifact", "inputs": {"artifact": ["1", 0], "filename_prefix": "x"}}}
    _expect_error(server, load_wrong, "BarkLoadFine", "ArtifactError", "holds a coarse artifact, not fine")

    offline = _workflow("bark_generate")
    offline["1"]["inputs"].update(models="suno", text_size="small", offline=True)
    _expect_error(server, offline, "BarkVoicePreset", "CheckpointError", "In ComfyUI: copy the model files")

    out_of_range = _workflow("bark_stagewise")
    out_of_range["4"]["inputs"]["max_coarse_history"] = 10
    with pytest.raises(PromptRejected) as info:
        server.queue(out_of_range)
    assert info.value.status == 400 and "4" in info.value.body.get("node_errors", {})

    server.run(_workflow("bark_generate"), timeout=300)  # the server is still healthy


def test_unload_models_then_run_again(server: ComfyServer):
    """'Unload models' (POST /free) hands our models back to ComfyUI's manager; the next run reloads them."""
    server.run(_workflow("bark_generate"), timeout=300)
    server.free(unload_models=True, free_memory=True)
    wf = _workflow("bark_generate")
    wf["3"]["inputs"]["seed"] = 4321
    entry = server.run(wf, timeout=300)
    assert server.output_files(entry)


def test_label_errors_show_clear_messages(server: ComfyServer):
    """An unreviewed take is refused for public use; a voice from audio without its date is refused."""
    public = _workflow("bark_quality_review")
    public["3"]["inputs"]["seed"] = 2718  # a take nobody reviewed
    public["8"]["inputs"]["audio"] = ["5", 3]
    del public["7"], public["9"]
    before = set((server.output_dir / "audio").glob("bark_public_*"))
    _expect_error(server, public, "BarkSaveLabelledAudio", "NotApprovedError", "has not been reviewed")
    assert set((server.output_dir / "audio").glob("bark_public_*")) == before, "a refused take was saved"

    rights = _workflow("bark_voice_from_audio")
    rights["3"]["inputs"]["when"] = ""
    _expect_error(server, rights, "BarkVoiceFromAudio", "RightsError", "needs when")
    rights["3"]["inputs"].update(when="2024-05-01", right="(choose)")
    _expect_error(server, rights, "BarkVoiceFromAudio", "RightsError", "Choose the basis")

    unlabelled_public = _workflow("bark_stagewise")
    unlabelled_public["7"]["inputs"].update(public=True, label=False)
    _expect_error(server, unlabelled_public, "BarkSaveLabelledAudio", "LabelError", "label OFF")
    server.run(_workflow("bark_generate"), timeout=300)  # healthy afterwards


def test_saved_file_carries_the_editor_workflow(server: ComfyServer, object_info: dict[str, Any]):
    """As core SaveAudio does, the prompt and the editor's workflow (extra_pnginfo) go into the file."""
    from bark_core.label.metadata import read_label

    wf = _workflow("bark_stagewise")
    wf["5"]["inputs"]["seed"] = 31  # fine re-runs, so the saver writes a new file
    wf["7"]["inputs"].update(filename_prefix="audio/bark_with_workflow", format="ogg")
    ui = api_to_ui(wf, object_info)
    entry = server.run(wf, timeout=300, extra_pnginfo={"workflow": ui})
    path = server.node_files(entry, "7")[0]
    label = check_labelled_file(path, wf["7"]["inputs"], TAKE_S + 0.1)
    carried = workflow_in_file(path, read_label(path))
    assert carried["workflow"] == ui and carried["prompt"]["7"]["class_type"] == "BarkSaveLabelledAudio"
    assert label["stages"]["semantic"]["seed"] == 1 and label["stages"]["fine"]["seed"] == 31


def test_stage_cache_serves_earlier_stages_after_comfy_frees_its_cache(server: ComfyServer):
    """The loader's stage cache outlives ComfyUI's executor cache: semantic tokens come back as a cache hit."""
    wf = {
        "1": {"class_type": "BarkModelLoader", "inputs": {**_workflow("bark_stagewise")["1"]["inputs"]}},
        "2": {"class_type": "BarkTextToSemantic",
              "inputs": {"models": ["1", 0], "text": "Cached across prompts.", "seed": 77, "temp": 0.7, "top_k": 0,
                         "top_p": 1.0, "min_eos_p": 0.2, "max_duration_s": TAKE_S, "allow_early_stop": True}},
        "3": {"class_type": "BarkInspect", "inputs": {"artifact": ["2", 0], "width": 320, "height": 160}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 1]}},
    }
    assert wf["1"]["inputs"]["stage_cache"] == "memory"
    first = json.loads(node_text(server.run(wf, timeout=300), "4"))
    assert first["chain"][-1]["cache_hit"] is False
    server.free(unload_models=True, free_memory=True)  # ComfyUI forgets every output (and the loader's handle)
    wf["3"]["inputs"]["width"] = 336
    loads_before = server.log_text().count("loaded text model")
    entry = server.run(wf, timeout=300)
    second = json.loads(node_text(entry, "4"))
    assert second["chain"][-1]["cache_hit"] is True and second["cache_hits"] == 1
    assert second["id"] == first["id"]
    # a cache hit loads no weights: the freed text model stays unloaded
    assert server.log_text().count("loaded text model") == loads_before > 0


def test_core_audio_nodes_take_bark_audio(server: ComfyServer, object_info: dict[str, Any]):
    """Bark's AUDIO feeds ComfyUI's own audio nodes (volume, trim, concat, savers) and comes back to Bark's saver."""
    loader = _workflow("bark_generate")["1"]
    take = {"class_type": "BarkGenerate",
            "inputs": {"models": ["1", 0], "text": "Core nodes.", "seed": 808, "semantic_temp": 0.7,
                       "coarse_temp": 0.7, "fine_temp": 0.5, "top_k": 0, "top_p": 1.0, "min_eos_p": 0.2,
                       "max_duration_s": TAKE_S}}
    wf: dict[str, Any] = {
        "1": loader, "2": take,
        "3": {"class_type": "AudioAdjustVolume", "inputs": {"audio": ["2", 0], "volume": -6}},
        "4": {"class_type": "TrimAudioDuration", "inputs": {"audio": ["3", 0], "start_index": 0.0, "duration": 0.5}},
        "5": {"class_type": "AudioConcat", "inputs": {"audio1": ["2", 0], "audio2": ["4", 0], "direction": "after"}},
        "6": {"class_type": "SaveAudio", "inputs": {"audio": ["5", 0], "filename_prefix": "audio/bark_core_nodes"}},
        "7": {"class_type": "BarkSaveLabelledAudio",
              "inputs": {"audio": ["5", 0], "filename_prefix": "audio/bark_core_nodes_labelled", "format": "flac",
                         "sample_rate": "keep", "normalize": "none", "target_db": 0.0, "bitrate": "default",
                         "public": False, "label": True}},
    }
    if "SaveAudioAdvanced" in object_info:  # ComfyUI >= 0.3x: the saver that replaces the deprecated ones
        wf["8"] = {"class_type": "SaveAudioAdvanced",
                   "inputs": {"audio": ["2", 0], "filename_prefix": "audio/bark_core_adv", "format": "flac"}}
    entry = server.run(wf, timeout=400)
    core = server.node_files(entry, "6")[0]
    rate, channels, samples = flac_info(core)
    take_s = ffprobe(server.node_files(entry, "7")[0])["duration"]
    assert rate == 24000 and channels == 2  # AudioConcat makes stereo
    whole = samples / rate
    assert 0.2 < whole and abs(take_s - whole) < 0.05
    label = check_labelled_file(server.node_files(entry, "7")[0], wf["7"]["inputs"], 2 * TAKE_S + 0.2,
                                known_origin=False)
    assert label["AI_GENERATED"] is True  # audio that core nodes changed is labelled as foreign audio
    if "8" in wf:
        assert flac_info(server.node_files(entry, "8")[0])[:2] == (24000, 1)


def test_label_names_each_stages_voice_in_a_real_server(server: ComfyServer):
    """Re-voicing at coarse/fine with another preset: the saved label names both voices and every stage's seed."""
    wf = _workflow("bark_stagewise")
    wf["20"] = {"class_type": "BarkVoicePreset", "inputs": {"models": ["1", 0], "preset": "English: v2/en_speaker_1"}}
    wf["4"]["inputs"].update(voice=["20", 0], seed=41)
    wf["5"]["inputs"].update(voice=["20", 0], seed=42)
    wf["7"]["inputs"]["filename_prefix"] = "audio/bark_two_voices"
    entry = server.run(wf, timeout=300)
    label = check_labelled_file(server.node_files(entry, "7")[0], wf["7"]["inputs"], TAKE_S + 0.1)
    stages = label["stages"]
    assert stages["semantic"]["voice"] == "v2/en_speaker_6" and stages["semantic"]["seed"] == 1
    assert stages["coarse"] == {"voice": "v2/en_speaker_1", "seed": 41}
    assert stages["fine"] == {"voice": "v2/en_speaker_1", "seed": 42}
    assert label["voice"] == "semantic=v2/en_speaker_6, coarse=v2/en_speaker_1, fine=v2/en_speaker_1"
    presets = sorted(o["preset"] for o in label["voice_origins"])
    assert presets == ["v2/en_speaker_1", "v2/en_speaker_6"]


def test_long_form_progress_runs_over_chunks(server: ComfyServer):
    ws = server.websocket()
    try:
        wf = _workflow("bark_long_form")
        wf["3"]["inputs"].update(seed=8, text="One short sentence. Then another one. And a third.", max_chars=20)
        prompt_id = server.queue(wf)
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            msg = ws.recv(timeout=5)
            if msg is None:
                continue
            seen.append(msg)
            if msg["type"] in ("execution_success", "execution_error") and msg["data"].get("prompt_id") == prompt_id:
                break
        assert seen[-1]["type"] == "execution_success", seen[-1]
        values = [m["data"]["value"] for m in seen if m["type"] == "progress" and m["data"]["node"] == "3"]
        assert values and values == sorted(values) and values[-1] == 1000 and len(set(values)) >= 6, values
    finally:
        ws.close()
    # ComfyUI sends execution_success before it writes the history entry: wait for the entry
    entry = server.wait(prompt_id, timeout=60)
    assert node_text(entry, "6").startswith("3 chunk(s)")


def test_zz_report_checked_files():
    """Prints what the labelled-file checks saw (run with -s to read it)."""
    print(f"\n--- {len(CHECKED)} labelled file(s) checked ---")
    for line in CHECKED:
        print(line)
    assert CHECKED


def test_server_log_has_no_pack_errors(server: ComfyServer):
    lines = [line for line in server.log_text().splitlines() if "bark" in line.lower()]
    assert not [line for line in lines if "IMPORT FAILED" in line or "Traceback" in line], lines
