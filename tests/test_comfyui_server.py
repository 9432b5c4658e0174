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
    REPO,
    ComfyServer,
    PromptRejected,
    api_to_ui,
    error_messages,
    load_api_workflow,
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
OUR_NODES = {
    "BarkModelLoader", "BarkVoicePreset", "BarkVoiceFile", "BarkVoiceFromTake", "BarkSaveVoice",
    "BarkTextToSemantic", "BarkSemanticToCoarse", "BarkCoarseToFine", "BarkDecode", "BarkGenerate",
    "BarkInspect", "BarkAudioInfo", "BarkCoarsePreview", "BarkSaveArtifact", "BarkLoadSemantic",
    "BarkLoadCoarse", "BarkLoadFine",
}
TAKE_S = 1.0
TINY = {"models": "tiny"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path):
    base = tmp_path_factory.mktemp("comfyui")
    shutil.copytree(tiny_dir, base / "models" / "bark" / "tiny")
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
    missing = OUR_NODES - set(object_info)
    assert not missing, f"nodes missing from /object_info: {sorted(missing)}\n{server.log_tail()}"
    extra = {k for k in object_info if k.startswith("Bark")} - OUR_NODES
    assert not extra, f"unexpected Bark nodes {extra}: update OUR_NODES and the docs"
    loader = object_info["BarkModelLoader"]["input"]["required"]["models"]
    assert "tiny" in loader[1]["options"] and loader[1]["options"][0] == "suno"
    seed = object_info["BarkTextToSemantic"]["input"]["required"]["seed"]
    assert seed[1]["control_after_generate"] is True
    assert object_info["BarkDecode"]["output"] == ["AUDIO"]
    assert object_info["BarkModelLoader"]["category"] == "audio/Bark"


def test_node_docs_are_served(server: ComfyServer):
    """The pack's web directory (node docs) is registered as a ComfyUI extension folder."""
    status, body = server._request("GET", f"/extensions/{PACK_LINK_NAME}/docs/BarkGenerate.md")
    assert status == 200 and "Bark Generate" in str(body)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_workflow_runs(server: ComfyServer, example: Path):
    t0 = time.monotonic()
    entry = server.run(load_api_workflow(example, loader=TINY, max_duration_s=TAKE_S), timeout=400)
    files = server.output_files(entry)
    assert files, f"{example.name} saved nothing"
    for path in files:
        assert path.is_file() and path.stat().st_size > 0, path
        if path.suffix == ".flac":
            rate, channels, samples = flac_info(path)
            assert (rate, channels) == (24000, 1)
            assert 0 < samples <= (TAKE_S + 0.1) * rate * 2 and samples % 320 == 0, samples
        elif path.suffix == ".png":
            assert png_size(path)[0] == 960
        elif path.suffix == ".npz":
            import numpy as np

            with np.load(path, allow_pickle=False) as data:
                assert data.files
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
    time.sleep(1.0)
    wf = _workflow("bark_generate")
    wf["3"]["inputs"]["seed"] = 4321
    entry = server.run(wf, timeout=300)
    assert server.output_files(entry)


def test_server_log_has_no_pack_errors(server: ComfyServer):
    lines = [line for line in server.log_text().splitlines() if "bark" in line.lower()]
    assert not [line for line in lines if "IMPORT FAILED" in line or "Traceback" in line], lines
