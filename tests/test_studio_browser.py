"""The studio as a user sees it: real JupyterLab 4 and Notebook 7, real headless Chromium, the quickstart notebook.

Installs nothing. Needs JupyterLab, ipywidgets, Playwright's Python package and a Chromium binary
(Debian's ``/usr/bin/chromium``, or ``$BARK_CHROMIUM``); Playwright's own browser download is not
used. Each app runs on 127.0.0.1 on a free port, token-less, rooted at a temporary copy of the
quickstart notebook, and is stopped in a ``finally``. The tiny model set is written by the test into
a private ``XDG_CACHE_HOME``, which is exactly where the notebook's ``tiny_model_dir()`` looks, so the
notebook runs unmodified. Screenshots go to ``$BARK_TEST_ARTIFACTS`` (default: pytest's tmp dir).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebooks" / "quickstart.ipynb"
CHROMIUM = os.environ.get("BARK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]
SERVER_START_S = 90  # JupyterLab's first start builds its settings; 2 busy cores can take a while
STUDIO_RENDER_S = 180  # kernel start, importing torch, building the studio
RUN_ALL_S = 240  # five stages of the tiny set plus pictures, on 2 CPU cores

APPS = {  # module to run, name, URL of the notebook
    "lab": ("jupyterlab", "JupyterLab 4", "/lab/tree/quickstart.ipynb"),
    "notebook": ("notebook", "Notebook 7", "/notebooks/quickstart.ipynb"),
}

pytestmark = pytest.mark.slow

# Every widget box of the studio: none may be wider inside than its own width (a horizontal scrollbar,
# or content spilling over its neighbour). Hidden boxes (a folded accordion) have no width to check.
OVERFLOW_JS = """() => Array.from(document.querySelectorAll(
    '.bark-studio, .bark-studio .lm-Widget, .bark-studio .widget-box, .bark-studio .widget-inline-hbox, ' +
    '.bark-studio select, .bark-studio textarea'))
  .filter(e => e.offsetParent !== null && e.clientWidth > 0 && e.scrollWidth > e.clientWidth)
  .map(e => `${String(e.className).replace(/\\s+/g, '.').slice(0, 120)}: ${e.scrollWidth} > ${e.clientWidth}`)"""
# what each player plays: a checksum of the samples in the WAV blob the widget handed the <audio> element
# (the data chunk only: the label's metadata records when the file was written)
AUDIO_SUMS_JS = """async els => Promise.all(els.map(async e => {
  if (!e.src) return '';
  const buf = await (await fetch(e.src)).arrayBuffer();
  const v = new DataView(buf);
  let at = 12, data = null;
  while (at + 8 <= buf.byteLength) {
    const id = String.fromCharCode(v.getUint8(at), v.getUint8(at + 1), v.getUint8(at + 2), v.getUint8(at + 3));
    const size = v.getUint32(at + 4, true);
    if (id === 'data') { data = new Uint8Array(buf, at + 8, Math.min(size, buf.byteLength - at - 8)); break; }
    at += 8 + size + (size % 2);
  }
  if (data === null) return 'no data chunk';
  let h = 2166136261;
  for (let i = 0; i < data.length; i++) { h = Math.imul(h ^ data[i], 16777619) >>> 0; }
  return `${data.length}:${h}`;
}))"""
SETTLE_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


def _missing(app: str) -> str | None:
    for module, what in ((APPS[app][0], APPS[app][1]), ("ipywidgets", "ipywidgets"), ("ipykernel", "ipykernel"),
                         ("playwright", "Playwright's Python package")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed (pip install {module})"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set BARK_CHROMIUM)"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer {url} within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the kernels it started
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture()
def artifacts_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("BARK_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _kernel_idle(base: str, timeout: float) -> None:
    """Wait until the notebook's kernel runs and is idle (asked through the server's REST API, so the
    same for JupyterLab and Notebook 7)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/api/sessions", timeout=5) as resp:  # noqa: S310 - loopback only
                sessions = json.loads(resp.read())
            if any(s.get("kernel", {}).get("execution_state") == "idle" for s in sessions):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no idle kernel within {timeout} s")


@pytest.fixture(params=["lab", "notebook"])
def lab(request: pytest.FixtureRequest, tmp_path: Path, artifacts_dir: Path):
    """A token-less JupyterLab (or Notebook 7) on 127.0.0.1 rooted at a copy of the quickstart notebook;
    yields (app, base URL)."""
    app = request.param
    reason = _missing(app)
    if reason:
        pytest.skip(f"browser test needs {APPS[app][1]} + Chromium: {reason}")
    from bark_core import write_tiny_model_set

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / "quickstart.ipynb")
    cache = tmp_path / "cache"
    write_tiny_model_set(cache / "bark_core" / "tiny-untrained")  # where the notebook's tiny_model_dir() looks
    settings = tmp_path / "lab-settings"
    notif = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notif.parent.mkdir(parents=True)
    notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "HF_HUB_OFFLINE": "1", "BARK_REVIEW_DIR": str(tmp_path / "rev"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "jconfig"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
           "IPYTHONDIR": str(tmp_path / "ipython"), "PYTHONUNBUFFERED": "1"}
    port = _free_port()
    log = artifacts_dir / f"{app}.log"
    cmd = [sys.executable, "-m", APPS[app][0], "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}", "--allow-root",
           "--ServerApp.port_retries=0", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status", proc, SERVER_START_S, log)
        yield app, f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


def _no_overflow(page, widths=(1024, 1600)) -> None:
    """At each window width: no widget box of the studio overflows horizontally."""
    for width in widths:
        page.set_viewport_size({"width": width, "height": 1400})
        page.evaluate(SETTLE_JS)
        over = page.evaluate(OVERFLOW_JS)
        assert not over, f"horizontal overflow at {width} px wide: {over}"


def _audio_sums(studio, selector: str) -> list[str]:
    return studio.locator(selector).evaluate_all(AUDIO_SUMS_JS)


def _seed_fields_match_seeds_used(studio) -> None:
    """Each stage's seed field shows the seed its result was made with (the panel's summary line)."""
    import re

    for stage in ("semantic", "coarse", "fine"):
        panel = studio.locator(f".bark-panel-{stage}")
        field = panel.locator(".bark-set-" + stage + "_seed input").input_value()
        info = " ".join(panel.locator(".bark-result").all_text_contents())
        used = re.search(r"seed (\d+)", info)
        assert used and used.group(1) == field, (stage, field, info)


def test_quickstart_studio_in_a_browser(lab: tuple[str, str], tmp_path: Path, artifacts_dir: Path):
    from playwright.sync_api import expect, sync_playwright

    app, base = lab
    shot = "studio.png" if app == "lab" else f"studio-{app}.png"
    t0 = time.monotonic()
    with sync_playwright() as pw:
        # scrollbars shown, as a person sees them (Playwright hides them in headless mode by default)
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            ignore_default_args=["--hide-scrollbars"], viewport={"width": 1400, "height": 2300})
        page = browser.new_page()
        media_errors: list[str] = []
        page.on("console", lambda msg: media_errors.append(msg.text) if msg.type == "error" and any(
            w in msg.text.lower() for w in ("media", "audio", "blob:")) else None)
        try:
            page.set_default_timeout(30_000)
            page.goto(base + APPS[app][2], timeout=90_000)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=90_000)
            _kernel_idle(base, 90)  # "Run All Cells" needs a live kernel
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator('li[data-command="runmenu:run-all"], li[data-command="notebook:run-all-cells"]').first.click()

            studio = page.locator(".bark-studio")
            studio.wait_for(timeout=STUDIO_RENDER_S * 1000)
            # rendered: every run button, plots (placeholders until a run) and audio players
            for stage in ("semantic", "coarse", "fine", "decode", "label"):
                expect(studio.locator(f".bark-run-{stage}")).to_be_visible()
            run_all = studio.locator(".bark-run-all")
            expect(run_all).to_be_enabled()
            assert studio.locator(".bark-plot img, img.bark-plot").count() >= 4
            assert studio.locator("audio").count() == 0  # no empty players (each logs a media error)
            page.screenshot(path=str(artifacts_dir / f"{app}-before-run.png"))
            for header in studio.locator(".lm-AccordionPanel-title, .jupyter-widget-Collapse-header").all():
                header.click()  # the recording, long-text and script boxes open: they must fit too
            _no_overflow(page)
            page.set_viewport_size({"width": 1400, "height": 2300})

            run_all.click()
            status = studio.locator(".bark-status")
            expect(status).to_contain_text("Done", timeout=RUN_ALL_S * 1000)
            expect(run_all).to_be_enabled()
            expect(studio.locator(".bark-cancel")).to_be_disabled()
            assert "error" not in (status.text_content() or "").lower()
            states = studio.locator(".bark-state")
            expect(states).to_have_count(5)
            for i in range(5):
                expect(states.nth(i)).to_have_text("up to date")
            # the players got audio, the plots got pictures
            srcs = studio.locator("audio").evaluate_all("els => els.map(e => e.src || '')")
            assert sum(1 for s in srcs if s.startswith("blob:")) >= 3, srcs
            sizes = studio.locator(".bark-panel-semantic img").evaluate_all("els => els.map(e => e.naturalWidth)")
            assert sizes and max(sizes) >= 400, sizes
            expect(studio.locator(".bark-quality")).to_contain_text("untrained_models")
            expect(studio.locator(".bark-history select option")).to_have_count(1)
            _seed_fields_match_seeds_used(studio)
            first_sums = _audio_sums(studio, "audio.bark-player-decode, audio.bark-player-label")
            assert len(first_sums) == 2 and all(first_sums), first_sums

            # a second take with a new master seed; then take #1 selected in History: what plays is take #1
            studio.locator(".bark-dice").first.click()
            run_all.click()
            expect(studio.locator(".bark-history select option")).to_have_count(2, timeout=RUN_ALL_S * 1000)
            expect(status).to_contain_text("Done", timeout=RUN_ALL_S * 1000)
            _seed_fields_match_seeds_used(studio)
            second_sums = _audio_sums(studio, "audio.bark-player-decode, audio.bark-player-label")
            assert second_sums != first_sums
            studio.locator(".bark-history select").select_option(index=1)  # newest first: take #1
            expect(studio.locator(".bark-panel-quality")).to_contain_text("take #1")
            page.evaluate(SETTLE_JS)
            assert _audio_sums(studio, "audio.bark-player-decode, audio.bark-player-label") == first_sums
            _seed_fields_match_seeds_used(studio)
            _no_overflow(page)
            page.set_viewport_size({"width": 1400, "height": 2300})
            assert not media_errors, media_errors

            # the whole studio in one picture: a window as tall as the studio, the studio at the top
            page.keyboard.press("Escape")
            if app == "lab":
                page.keyboard.press("Control+b")  # fold the file browser away
            height = int((studio.bounding_box() or {"height": 2000})["height"])
            page.set_viewport_size({"width": 1400, "height": min(height + 200, 6000)})
            page.wait_for_timeout(500)
            studio.evaluate("el => el.scrollIntoView({block: 'start'})")
            page.wait_for_timeout(500)
            studio.screenshot(path=str(artifacts_dir / shot))
        except Exception:
            page.screenshot(path=str(artifacts_dir / f"{app}-failure.png"))
            (artifacts_dir / f"{app}-failure.html").write_text(page.content())
            raise
        finally:
            browser.close()
    print(f"{APPS[app][1]}: studio rendered, ran and photographed in {time.monotonic() - t0:.1f} s")
