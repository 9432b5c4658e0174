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


def test_quickstart_studio_in_a_browser(lab: tuple[str, str], tmp_path: Path, artifacts_dir: Path):
    from playwright.sync_api import expect, sync_playwright

    app, base = lab
    shot = "studio.png" if app == "lab" else f"studio-{app}.png"
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 2300})
        page = browser.new_page()
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
            assert studio.locator("audio").count() >= 3
            page.screenshot(path=str(artifacts_dir / f"{app}-before-run.png"))

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
