"""Drive a real ComfyUI server from tests: start it headless with our pack, post workflows, watch progress.

ComfyUI is not on PyPI, so the real-server test runs only where ``COMFYUI_DIR`` points at a checkout
(``COMFYUI_PYTHON`` may name the python of its own venv). Everything the server writes (models,
custom_nodes, input, output, temp, user) lives in one temporary base directory, with the pack
symlinked into its ``custom_nodes/``, so the checkout itself is never touched.

Standard library only (urllib, a minimal websocket reader), so the project's test venv needs
nothing extra.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every node the pack must register: the unit tests and the real-server test both hold it to this list.
PACK_NODES = frozenset({
    "BarkModelLoader", "BarkVoicePreset", "BarkVoiceFile", "BarkVoiceFromTake", "BarkVoiceFromAudio", "BarkSaveVoice",
    "BarkTextToSemantic", "BarkSemanticToCoarse", "BarkCoarseToFine", "BarkDecode", "BarkGenerate", "BarkLongForm",
    "BarkLabel", "BarkSaveLabelledAudio", "BarkDetectWatermark", "BarkQualityCheck", "BarkReview",
    "BarkInspect", "BarkAudioInfo", "BarkCoarsePreview", "BarkSaveArtifact", "BarkLoadSemantic",
    "BarkLoadCoarse", "BarkLoadFine", "BarkScript", "BarkRetakePolicy",
})

REPO = Path(__file__).resolve().parents[1]
PACK_LINK_NAME = "bark-stages"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerError(RuntimeError):
    """The server did not start, rejected a prompt, or a prompt failed; carries the server's own words."""


class PromptRejected(ServerError):
    def __init__(self, status: int, body: Any):
        self.status, self.body = status, body
        super().__init__(f"POST /prompt answered {status}: {json.dumps(body)[:2000]}")


# ---- a minimal websocket client (RFC 6455), enough to read ComfyUI's status messages -------------

class WebSocket:
    """Reads JSON text frames from ``/ws``; binary frames (image previews) are skipped."""

    def __init__(self, host: str, port: int, path: str, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(request.encode())
        header = b""
        while b"\r\n\r\n" not in header:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ServerError("websocket handshake: connection closed")
            header += chunk
        if b" 101 " not in header.split(b"\r\n", 1)[0]:
            raise ServerError(f"websocket handshake refused: {header[:200]!r}")

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        head = bytes([0x80 | opcode])
        n = len(payload)
        head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON message, or None when nothing came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                b0, b1 = self._exact(2)
            except TimeoutError:
                return None
            self.sock.settimeout(30)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            mask = self._exact(4) if b1 & 0x80 else None
            payload = self._exact(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x1:
                return json.loads(payload.decode())
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("websocket closed by server")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(0x8)
        self.sock.close()


# ---- the server ----------------------------------------------------------------------------------

@dataclass
class ComfyServer:
    comfy_dir: Path
    base: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.base / "models"

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    # -- lifecycle --
    @classmethod
    def start(cls, comfy_dir: str | os.PathLike, base: str | os.PathLike, *, python: str | None = None,
              pack_dir: str | os.PathLike = REPO, timeout: float = 180.0, extra_args: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> ComfyServer:
        """Start ``main.py --cpu`` on a free port with the pack linked into ``<base>/custom_nodes``.

        Returns once ``/system_stats`` answers; raises ServerError with the log tail otherwise.
        """
        comfy_dir, base = Path(comfy_dir).resolve(), Path(base).resolve()
        if not (comfy_dir / "main.py").is_file():
            raise ServerError(f"{comfy_dir} has no main.py; COMFYUI_DIR must point at a ComfyUI checkout.")
        for sub in ("custom_nodes", "models", "input", "output", "temp", "user", "frontend"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        link = base / "custom_nodes" / PACK_LINK_NAME
        if not link.exists():
            link.symlink_to(Path(pack_dir).resolve(), target_is_directory=True)
        port = free_port()
        log_path = base / "server.log"
        args = [python or sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                "--disable-auto-launch", "--base-directory", str(base), "--output-directory", str(base / "output"),
                "--input-directory", str(base / "input"), "--temp-directory", str(base / "temp"),
                "--user-directory", str(base / "user"), "--database-url", "sqlite:///:memory:"]
        if not _has_frontend(python):
            args += ["--front-end-root", str(base / "frontend")]
        args += list(extra_args)
        run_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
                   **(env or {})}
        log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=comfy_dir, stdout=log, stderr=subprocess.STDOUT, env=run_env,
                                start_new_session=True)
        server = cls(comfy_dir=comfy_dir, base=base, port=port, proc=proc, log_path=log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ServerError(f"ComfyUI exited with {proc.returncode} during start:\n{server.log_tail()}")
            try:
                server.get_json("/system_stats", timeout=2)
                return server
            except (OSError, ServerError):
                time.sleep(0.5)
        server.stop()
        raise ServerError(f"ComfyUI did not answer within {timeout:.0f} s:\n{server.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server we started (by its PID only) and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    # -- HTTP --
    def _request(self, method: str, path: str, data: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(self.url + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"} if body else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        status, body = self._request("GET", path, timeout=timeout)
        if status != 200:
            raise ServerError(f"GET {path} answered {status}: {body}")
        return body

    def post_json(self, path: str, data: Any, timeout: float = 30.0) -> tuple[int, Any]:
        return self._request("POST", path, data, timeout=timeout)

    def object_info(self, node_id: str | None = None) -> dict[str, Any]:
        return self.get_json("/object_info" + (f"/{node_id}" if node_id else ""), timeout=60)

    def queue(self, prompt: dict[str, Any], extra_pnginfo: dict[str, Any] | None = None) -> str:
        """POST an API-format workflow; returns its prompt_id, or raises PromptRejected (validation errors).

        ``extra_pnginfo`` is what the editor sends along (``{"workflow": <UI-format graph>}``); savers
        write it into their files.
        """
        data: dict[str, Any] = {"prompt": prompt, "client_id": self.client_id}
        if extra_pnginfo is not None:
            data["extra_data"] = {"extra_pnginfo": extra_pnginfo}
        status, body = self.post_json("/prompt", data)
        if status != 200 or not isinstance(body, dict) or "prompt_id" not in body:
            raise PromptRejected(status, body)
        return str(body["prompt_id"])

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict[str, Any]:
        """Poll ``/history`` until the prompt finished (either way); returns its history entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and \
                    entry["status"].get("status_str"):
                return entry
            if self.proc.poll() is not None:
                raise ServerError(f"ComfyUI died while running {prompt_id}:\n{self.log_tail()}")
            time.sleep(0.25)
        raise ServerError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log_tail()}")

    def run(self, prompt: dict[str, Any], timeout: float = 300.0,
            extra_pnginfo: dict[str, Any] | None = None) -> dict[str, Any]:
        """Queue, wait, and raise with the server's error message if the prompt failed."""
        entry = self.wait(self.queue(prompt, extra_pnginfo), timeout)
        if entry["status"]["status_str"] != "success":
            raise ServerError(f"prompt failed: {json.dumps(error_messages(entry))[:3000]}")
        return entry

    def interrupt(self) -> None:
        self.post_json("/interrupt", {})

    def free(self, unload_models: bool = True, free_memory: bool = True) -> None:
        """POST /free and return once the server has acted on it.

        The worker reads the /free flags between prompts, not when they are posted; a prompt queued right
        after could still run on the old cache. So a tiny barrier prompt runs next: the worker checks the
        flags right after it (or before it), always before anything queued later.
        """
        self.post_json("/free", {"unload_models": unload_models, "free_memory": free_memory})
        barrier = {"1": {"class_type": "PrimitiveString", "inputs": {"value": "barrier"}},
                   "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
        self.run(barrier, timeout=120)

    def websocket(self, timeout: float = 10.0) -> WebSocket:
        return WebSocket("127.0.0.1", self.port, f"/ws?clientId={self.client_id}", timeout)

    def output_files(self, entry: dict[str, Any]) -> list[Path]:
        """Files the prompt's output nodes report (type 'output' only: those live in output/)."""
        files = []
        for node_out in entry.get("outputs", {}).values():
            for items in node_out.values():
                if not isinstance(items, list):
                    continue
                for item in items:
                    if isinstance(item, dict) and item.get("type") == "output" and "filename" in item:
                        files.append(self.output_dir / item.get("subfolder", "") / item["filename"])
        return files


    def node_files(self, entry: dict[str, Any], node_id: str) -> list[Path]:
        """Files one output node reported (type 'output')."""
        return self.output_files({"outputs": {node_id: entry.get("outputs", {}).get(node_id, {})}})


def node_text(entry: dict[str, Any], node_id: str) -> str:
    """The text a node showed in the UI (PreviewAny, or a node returning ui text)."""
    return "".join(entry.get("outputs", {}).get(node_id, {}).get("text", []))


def ffprobe(path: str | os.PathLike) -> dict[str, Any]:
    """(sample rate, channels, duration, tags) of an audio file's first audio stream, read by ffprobe."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    probe = json.loads(out)
    stream = next(s for s in probe["streams"] if s.get("codec_type") == "audio")
    duration = float(stream.get("duration") or probe["format"]["duration"])
    tags = {**probe["format"].get("tags", {}), **stream.get("tags", {})}
    return {"sample_rate": int(stream["sample_rate"]), "channels": int(stream["channels"]), "duration": duration,
            "codec": stream.get("codec_name"), "tags": tags}


def error_messages(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The execution_error messages of a history entry (exception type and message per node)."""
    out = []
    for kind, msg in entry.get("status", {}).get("messages", []):
        if kind in ("execution_error", "execution_interrupted"):
            out.append({"kind": kind, "node_type": msg.get("node_type"), "type": msg.get("exception_type"),
                        "message": msg.get("exception_message")})
    return out


def _has_frontend(python: str | None) -> bool:
    """Whether the server's python has comfyui-frontend-package (else we serve an empty front end)."""
    try:
        subprocess.run([python or sys.executable, "-c", "import comfyui_frontend_package"], check=True,
                       capture_output=True, timeout=60)
        return True
    except (subprocess.SubprocessError, OSError):
        return False


def load_api_workflow(path: str | os.PathLike, loader: dict[str, Any] | None = None,
                      **input_overrides: Any) -> dict[str, Any]:
    """Read an API-format workflow, adjusted for a test run.

    ``loader`` replaces BarkModelLoader inputs (e.g. ``{"models": "tiny"}``); each keyword replaces that
    input on every node that has it as a widget (e.g. ``max_duration_s=1.0`` to keep takes short).
    """
    prompt = json.loads(Path(path).read_text())
    for node in prompt.values():
        inputs = node.get("inputs", {})
        if node.get("class_type") == "BarkModelLoader":
            inputs.update(loader or {})
        for key, value in input_overrides.items():
            if key in inputs and not isinstance(inputs[key], list):
                inputs[key] = value
    return prompt


# ---- UI-format (litegraph) workflows <-> API format ------------------------------------------------

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _is_widget(spec: list[Any]) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _ordered_inputs(info: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    out = []
    for section in ("required", "optional"):
        specs = info["input"].get(section, {})
        for name in info.get("input_order", {}).get(section, list(specs)):
            out.append((name, specs[name]))
    return out


def _has_control(spec: list[Any]) -> bool:
    return len(spec) > 1 and isinstance(spec[1], dict) and bool(spec[1].get("control_after_generate"))


def api_to_ui(prompt: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """A UI-format workflow (what the editor loads, what example_workflows/ serves) for an API prompt.

    Nodes are laid out in columns by graph depth; widget values follow the node's input order, with
    "fixed" after each seed that has control-after-generate, as the front end stores them.
    """
    depth: dict[str, int] = {}

    def node_depth(nid: str) -> int:
        if nid not in depth:
            ups = [v[0] for v in prompt[nid]["inputs"].values() if isinstance(v, list)]
            depth[nid] = 1 + max((node_depth(u) for u in ups), default=-1)
        return depth[nid]

    for nid in prompt:
        node_depth(nid)
    links: list[list[Any]] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    next_y: dict[int, int] = {}
    nodes = []
    order = sorted(prompt, key=lambda n: (depth[n], int(n)))
    for index, nid in enumerate(order):
        node = prompt[nid]
        info = object_info[node["class_type"]]
        inputs, widgets = [], []
        for name, spec in _ordered_inputs(info):
            value = node["inputs"].get(name)
            if _is_widget(spec):
                default = spec[1].get("default") if len(spec) > 1 and isinstance(spec[1], dict) else None
                widget_value = default if isinstance(value, list) or value is None else value
                if isinstance(value, list):  # a widget fed by a link
                    link_id = len(links) + 1
                    links.append([link_id, int(value[0]), int(value[1]), int(nid), len(inputs),
                                  object_info[prompt[value[0]]["class_type"]]["output"][value[1]]])
                    out_links.setdefault((value[0], value[1]), []).append(link_id)
                    inputs.append({"name": name, "type": "COMBO" if isinstance(spec[0], list) else spec[0],
                                   "widget": {"name": name}, "link": link_id})
                widgets.append(widget_value)
                if _has_control(spec):
                    widgets.append("fixed")
            else:
                link_id = None
                if isinstance(value, list):
                    link_id = len(links) + 1
                    links.append([link_id, int(value[0]), int(value[1]), int(nid), len(inputs), spec[0]])
                    out_links.setdefault((value[0], value[1]), []).append(link_id)
                entry = {"name": name, "type": spec[0], "link": link_id}
                if name in info["input"].get("optional", {}):
                    entry["shape"] = 7  # the editor's marker for an optional socket
                inputs.append(entry)
        col = depth[nid]
        sockets = max(len([i for i in inputs if "widget" not in i]), len(info["output"]))
        multiline = sum(1 for name, spec in _ordered_inputs(info)
                        if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("multiline"))
        height = 40 + 22 * sockets + 24 * len(widgets) + 90 * multiline
        y = next_y.get(col, 60)
        next_y[col] = y + height + 70
        nodes.append({
            "id": int(nid), "type": node["class_type"], "pos": [60 + 400 * col, y],
            "size": [360, height], "flags": {}, "order": index, "mode": 0,
            "inputs": inputs,
            "outputs": [{"name": name, "type": typ, "links": [], "slot_index": i}
                        for i, (name, typ) in enumerate(zip(info["output_name"], info["output"], strict=True))],
            "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": widgets,
        })
    for node in nodes:
        for i, out in enumerate(node["outputs"]):
            out["links"] = out_links.get((str(node["id"]), i), [])
    return {"last_node_id": max(int(n) for n in prompt), "last_link_id": len(links), "nodes": nodes,
            "links": links, "groups": [], "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
            "version": 0.4}


def ui_to_api(workflow: dict[str, Any], object_info: dict[str, Any]) -> dict[str, Any]:
    """The API prompt a UI-format workflow queues (the front end's graphToPrompt, for plain graphs)."""
    link_src = {link[0]: (str(link[1]), link[2]) for link in workflow["links"]}
    prompt: dict[str, Any] = {}
    for node in workflow["nodes"]:
        info = object_info[node["type"]]
        linked = {i["name"]: i["link"] for i in node.get("inputs", []) if i.get("link") is not None}
        values = list(node.get("widgets_values") or [])
        inputs: dict[str, Any] = {}
        for name, spec in _ordered_inputs(info):
            if _is_widget(spec):
                value = values.pop(0) if values else None
                if _has_control(spec) and values:
                    values.pop(0)
                inputs[name] = list(link_src[linked[name]]) if name in linked else value
            elif name in linked:
                inputs[name] = list(link_src[linked[name]])
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt
