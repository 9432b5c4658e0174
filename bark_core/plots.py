"""Pictures of stage artifacts, for inspection panels (ComfyUI's Inspect node, notebook widgets).

Every function returns an RGB ``uint8`` array of shape (height, width, 3), so each front end can
turn it into its own image type (a ComfyUI IMAGE tensor, a PIL image, a PNG) without knowing
matplotlib. Matplotlib is imported lazily and drawn through its Agg canvas only: no GUI backend,
no global pyplot state, safe in a server's worker thread.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import constants as C
from . import limits
from .artifacts import Artifact, Audio, CoarseCodes, FineCodes, SemanticTokens
from .errors import ArtifactError

DEFAULT_WIDTH = 960
DEFAULT_HEIGHT = 360
_DPI = 100
MAX_SIDE = 8192


def _figure(width: int, height: int) -> Any:
    """A figure bound to an Agg canvas (thread-safe, unlike pyplot's global figure manager)."""
    for name, value in (("width", width), ("height", height)):
        limits.number(name, value, lo=64, hi=MAX_SIDE, integer=True,
                      hint=f"an image must be at least 64x64 pixels and at most {MAX_SIDE} on a side.")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _to_rgb(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3], dtype=np.uint8)


def title_for(art: Artifact) -> str:
    """One line saying what the picture shows: kind, size, duration, seed, cache hit, untrained."""
    prov = art.provenance
    if isinstance(art, SemanticTokens):
        size = f"{art.n_frames} tokens @ {C.SEMANTIC_RATE_HZ:g} Hz"
    elif isinstance(art, (CoarseCodes, FineCodes)):
        size = f"{art.codes.shape[0]} codebooks x {art.n_frames} frames @ {C.COARSE_RATE_HZ} Hz"
    elif isinstance(art, Audio):
        size = f"{art.n_samples} samples @ {art.sample_rate} Hz"
    else:
        size = art.KIND
    parts = [art.KIND, size, f"{art.duration_s:.2f} s"]
    if prov.seed is not None:
        parts.append(f"seed {prov.seed}")
    if prov.voice:
        parts.append(f"voice {prov.voice}")
    parts.append("cache hit" if art.cache_hit else "fresh")
    if (prov.extra or {}).get("untrained"):
        parts.append("UNTRAINED")
    return " | ".join(parts)


def _kind(art: Any) -> str:
    return str(getattr(art, "KIND", type(art).__name__))


def _set_title(ax: Any, art: Artifact, title: str | None, width: int, height: int) -> None:
    """The title wrapped to the picture's width (never clipped at its edges)."""
    import textwrap

    text = title_for(art) if title is None else title
    if not text:
        return
    per_line = max(20, int(width / 8))  # ~6 px a character at 9 pt and 100 dpi, centred over the axes
    lines = textwrap.wrap(text, per_line, break_on_hyphens=False) or [""]
    keep = 2 if height >= 200 else 1  # a small picture keeps room for its plot
    if len(lines) > keep:
        lines = [*lines[: keep - 1], lines[keep - 1][: per_line - 1].rstrip() + "…"]
    ax.set_title("\n".join(lines), fontsize=9)


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"empty {what}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def render_semantic(art: SemanticTokens, *, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
                    title: str | None = None) -> np.ndarray:
    """Token id over time: shows length, pauses (repeated ids) and where the model stopped.

    ``title``: None for :func:`title_for`; a front end that shows the state elsewhere passes its own
    (or "" for none). The same holds for every ``render_*``."""
    if not isinstance(art, SemanticTokens):
        raise ArtifactError(f"render_semantic takes semantic artifacts, got {_kind(art)}.")
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    if art.n_frames == 0:
        _empty(ax, "semantic tokens")
    else:
        t = np.arange(art.n_frames) / C.SEMANTIC_RATE_HZ
        ax.plot(t, art.tokens, linewidth=0.6, color="#3b6ea8")
        ax.scatter(t, art.tokens, s=3, color="#1d3a5f")
        ax.set_xlim(0, max(t[-1], 1 / C.SEMANTIC_RATE_HZ))
        ax.set_ylim(0, C.SEMANTIC_VOCAB_SIZE)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("semantic token id")
        ax.grid(alpha=0.3)
    _set_title(ax, art, title, width, height)
    fig.tight_layout()
    return _to_rgb(fig)


def render_codes(art: CoarseCodes | FineCodes, *, width: int = DEFAULT_WIDTH,
                 height: int = DEFAULT_HEIGHT, title: str | None = None) -> np.ndarray:
    """Time x codebook heatmap of EnCodec code ids (2 rows for coarse, 8 for fine)."""
    if not isinstance(art, (CoarseCodes, FineCodes)):
        raise ArtifactError(f"render_codes takes coarse or fine artifacts, got {_kind(art)}.")
    fig = _figure(width, height)
    ax = fig.add_subplot(1, 1, 1)
    n_cb = art.codes.shape[0]
    if art.n_frames == 0:
        _empty(ax, f"{art.KIND} codes")
    else:
        im = ax.imshow(art.codes, aspect="auto", interpolation="nearest", origin="lower", cmap="viridis",
                       vmin=0, vmax=C.CODEBOOK_SIZE - 1,
                       extent=(0, art.n_frames / C.COARSE_RATE_HZ, -0.5, n_cb - 0.5))
        ax.set_yticks(range(n_cb))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("codebook")
        fig.colorbar(im, ax=ax, label="code id", pad=0.01)
    _set_title(ax, art, title, width, height)
    fig.tight_layout()
    return _to_rgb(fig)


def _envelope(samples: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max per bin, so a long waveform draws fast and still shows every peak."""
    n = len(samples)
    n_bins = max(1, min(n_bins, n))
    edges = np.linspace(0, n, n_bins + 1).astype(int)
    lo = np.minimum.reduceat(samples, edges[:-1])
    hi = np.maximum.reduceat(samples, edges[:-1])
    return edges[:-1], lo, hi


def render_audio(art: Audio, *, width: int = DEFAULT_WIDTH, height: int = 2 * DEFAULT_HEIGHT,
                 title: str | None = None) -> np.ndarray:
    """Waveform (top) and log-magnitude spectrogram (bottom, with its dB scale) on one time axis."""
    if not isinstance(art, Audio):
        raise ArtifactError(f"render_audio takes audio artifacts, got {_kind(art)}.")
    fig = _figure(width, height)
    ax_w, ax_s = fig.subplots(2, 1, sharex=True)
    sr = art.sample_rate
    x = art.samples
    if len(x) == 0:
        _empty(ax_w, "audio")
        _empty(ax_s, "audio")
    else:
        starts, lo, hi = _envelope(x, 4 * width)
        t = starts / sr
        ax_w.fill_between(t, lo, hi, color="#3b6ea8", linewidth=0.5)
        ax_w.set_ylim(-1.05, 1.05)
        ax_w.set_ylabel("amplitude")
        ax_w.grid(alpha=0.3)
        from scipy.signal import spectrogram

        nperseg = int(min(512, len(x)))
        freqs, times, sxx = spectrogram(x.astype(np.float64), fs=sr, nperseg=nperseg,
                                        noverlap=nperseg // 2 if nperseg > 1 else 0)
        db = 10 * np.log10(sxx + 1e-10)
        vmax = float(db.max()) if db.size else 0.0
        im = ax_s.imshow(db, aspect="auto", origin="lower", cmap="magma", vmin=vmax - 80, vmax=vmax,
                         extent=(0, len(x) / sr, 0, sr / 2000))
        fig.colorbar(im, ax=ax_s, label="dB", pad=0.01)
        fig.colorbar(im, ax=ax_w, pad=0.01).ax.set_visible(False)  # keeps both time axes the same width
        ax_s.set_ylabel("frequency (kHz)")
        ax_s.set_xlim(0, len(x) / sr)
    ax_s.set_xlabel("time (s)")
    _set_title(ax_w, art, title, width, height)
    fig.tight_layout()
    return _to_rgb(fig)


def render(art: Artifact, **size: Any) -> np.ndarray:
    """Picture of any stage artifact; ``width``/``height`` in pixels and ``title`` may be given."""
    if isinstance(art, SemanticTokens):
        return render_semantic(art, **size)
    if isinstance(art, (CoarseCodes, FineCodes)):
        return render_codes(art, **size)
    if isinstance(art, Audio):
        return render_audio(art, **size)
    raise ArtifactError(f"Nothing to render for {_kind(art)}; "
                        "pass a semantic, coarse, fine or audio artifact.")
