"""Every ```python block of README.md runs on its own, as a reader would paste it, on the tiny set.

The one change made to a block: ``BarkModels("suno"`` becomes ``BarkModels(<folder of tiny_model_dir()>``,
because tests have no hub. ``tiny_model_dir()`` is the set ``bark-say --tiny`` uses (untrained, takes
stop after 2 s). Each block runs in a fresh namespace in an empty folder, on one CPU thread (the
choice ``bark-say --threads auto`` makes for the tiny set).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _blocks() -> list[tuple[str, str]]:
    """(heading the block sits under, code) for each python block."""
    out = []
    for match in re.finditer(r"^```python\n(.*?)^```", README, re.S | re.M):
        headings = re.findall(r"^## (.+)$", README[: match.start()], re.M)
        out.append((headings[-1] if headings else "top", match.group(1)))
    return out


BLOCKS = _blocks()


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(BLOCKS) >= 9, [h for h, _ in BLOCKS]


@pytest.mark.parametrize("heading,code", BLOCKS, ids=[f"{i + 1}-{h[:30]}" for i, (h, _) in enumerate(BLOCKS)])
def test_readme_block_runs_on_its_own(heading, code, tmp_path, monkeypatch):
    if "bark_studio" in code:
        pytest.importorskip("ipywidgets")
    if re.search(r"\.(mp3|flac|ogg)\"", code) and shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is needed to write MP3/FLAC/OGG")
    from bark_core import tiny_model_dir

    tiny = tiny_model_dir()
    runnable = code.replace('BarkModels("suno"', f"BarkModels({str(tiny)!r}")
    runnable = runnable.replace('ModelSpec("suno"', f"ModelSpec({str(tiny)!r}")  # a render job's model set
    assert '"suno"' not in re.sub(r"#.*", "", runnable), "a hub name (outside comments) this test cannot replace"
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        exec(compile(runnable, f"README.md ({heading})", "exec"), {"__name__": "__readme__"})
    finally:
        torch.set_num_threads(threads)
