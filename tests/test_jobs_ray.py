"""The Ray backend on a local cluster (``ray.init(num_cpus=2)``): 200 rows give the same bytes (all but
the label's timestamp) as the local backend, with 1 and with 2 CPU actors and three different batch
sizes, and shutting the cluster down leaves no Ray process behind.

Short takes with an argmax fine stage keep this to a few minutes on 2 cores; ``benchmarks/render.py``
measures throughput.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs pip install 'bark-stages[ray]' (ray[data])")
pytest.importorskip("ray.data", reason="the Ray backend needs ray's data extra (pandas, pyarrow)")

from bark_core.jobs import ModelSpec, ResultsLog, render_job  # noqa: E402
from bark_core.label import detect  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")  # Ray's own, on copy

ROWS = 200
VOICES = ["v2/en_speaker_6", "v2/de_speaker_3", None, "announcer"]
FAST = {"max_gen_duration_s": 0.1, "fine_temp": None}


def _descendants(pid: int) -> set[int]:
    """Live (non-zombie) processes below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    state: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        state[int(entry)] = fields[0]
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return {p for p in out if state.get(p) != "Z"}


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            st = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        if st[st.rindex(")") + 2:].split()[0] != "Z":
            alive.add(p)
    return alive


def _without_timestamp(data: bytes) -> bytes:
    """The label's time (``labelled_at`` in the JSON, the summary comment, the ID3 and XMP fields) is the one part
    that differs."""
    return re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)?", rb"<time>", data)


def _start_cluster() -> None:
    """``ray.init(num_cpus=2)``; once more if the raylet missed Ray's fixed 30 s start-up wait (a loaded
    machine), after cleaning up what the first try started."""
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
            return
        except Exception as exc:
            ray.shutdown()
            if attempt == 2 or "timed out during startup" not in str(exc):
                raise


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process check reads /proc (Linux)")
def test_local_and_ray_give_the_same_bytes_and_ray_leaves_nothing_running(tmp_path: Path, tiny_dir: Path):
    rows = [{"id": f"line-{i:03d}", "text": f"This is line number {i}.", "voice": VOICES[i % len(VOICES)],
             "settings": dict(FAST)} for i in range(ROWS)]
    manifest = tmp_path / "job.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = ModelSpec(models=str(tiny_dir), device="cpu")
    local = render_job(manifest, tmp_path / "local", spec=spec, batch_size=5)  # Ray below: batches of 4 and 3
    assert local.rendered == ROWS

    assert not ray.is_initialized()
    _start_cluster()
    try:
        one = render_job(manifest, tmp_path / "ray1", spec=spec, ray="local", workers=1, batch_size=4)
        two = render_job(manifest, tmp_path / "ray2", spec=spec, ray="local", workers=2, batch_size=3)
        assert ray.is_initialized()  # a session the caller started stays the caller's
        cluster = _descendants(os.getpid())
        assert cluster  # raylet, GCS and the actors' workers run below this process
    finally:
        ray.shutdown()
    deadline = time.monotonic() + 60
    while _alive(cluster) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(cluster), f"Ray processes left after shutdown: {sorted(_alive(cluster))}"

    assert (one.rendered, two.rendered, one.failed, two.failed) == (ROWS, ROWS, 0, 0)
    want = {p.relative_to(tmp_path / "local"): p.read_bytes() for p in (tmp_path / "local").glob("*.wav")}
    assert len(want) == ROWS
    for name in ("ray1", "ray2"):
        got = {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).glob("*.wav")}
        assert got.keys() == want.keys()  # same content-addressed names
        for rel, data in want.items():
            assert _without_timestamp(got[rel]) == _without_timestamp(data), rel
    workers = {r["worker"] for r in ResultsLog(tmp_path / "ray2").records()}
    assert len(workers) == 2 and not workers & {r["worker"] for r in ResultsLog(tmp_path / "local").records()}
    assert all(detect(p).detected for p in list((tmp_path / "ray2").glob("*.wav"))[:4])
