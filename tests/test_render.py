"""bark_core.plots: every artifact kind becomes an RGB uint8 picture with an informative title."""

from __future__ import annotations

import numpy as np
import pytest

from bark_core import ArtifactError, Audio, CoarseCodes, FineCodes, Provenance, SemanticTokens
from bark_core import constants as C

render_mod = pytest.importorskip("bark_core.plots")
pytest.importorskip("matplotlib", reason="bark_core.plots draws with matplotlib (pip install matplotlib)")


def _prov(stage: str, **kw) -> Provenance:
    return Provenance(stage=stage, **kw)


@pytest.fixture()
def arts():
    rng = np.random.default_rng(0)
    return {
        "semantic": SemanticTokens(tokens=rng.integers(0, C.SEMANTIC_VOCAB_SIZE, 120),
                                   provenance=_prov("semantic", seed=123, voice="v2/en_speaker_6")),
        "coarse": CoarseCodes(codes=rng.integers(0, 1024, (2, 90)), provenance=_prov("coarse", seed=5)),
        "fine": FineCodes(codes=rng.integers(0, 1024, (8, 90)), provenance=_prov("fine")),
        "audio": Audio(samples=(0.5 * np.sin(np.arange(24000) / 7)).astype(np.float32),
                       provenance=_prov("decode", extra={"untrained": True})),
    }


@pytest.mark.parametrize("kind", ["semantic", "coarse", "fine", "audio"])
def test_render_dispatch_shapes(arts, kind):
    img = render_mod.render(arts[kind], width=320, height=160)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape == (160, 320, 3)
    assert img.std() > 0  # something was drawn


def test_specific_functions_default_sizes(arts):
    assert render_mod.render_semantic(arts["semantic"]).shape == (360, 960, 3)
    assert render_mod.render_codes(arts["coarse"]).shape == (360, 960, 3)
    assert render_mod.render_codes(arts["fine"]).shape == (360, 960, 3)
    assert render_mod.render_audio(arts["audio"]).shape == (720, 960, 3)


def test_pictures_differ_with_content(arts):
    a = render_mod.render(arts["coarse"], width=256, height=128)
    other = CoarseCodes(codes=np.zeros((2, 90), np.int64), provenance=arts["coarse"].provenance)
    assert not np.array_equal(a, render_mod.render(other, width=256, height=128))


def test_titles_carry_duration_seed_voice_cache_and_untrained(arts):
    t = render_mod.title_for(arts["semantic"])
    assert "semantic" in t and "120 tokens" in t and "seed 123" in t and "v2/en_speaker_6" in t and "fresh" in t
    assert f"{120 / C.SEMANTIC_RATE_HZ:.2f} s" in t
    arts["coarse"].cache_hit = True
    assert "cache hit" in render_mod.title_for(arts["coarse"])
    assert "2 codebooks x 90 frames" in render_mod.title_for(arts["coarse"])
    assert "UNTRAINED" in render_mod.title_for(arts["audio"]) and "1.00 s" in render_mod.title_for(arts["audio"])


def test_empty_artifacts_render():
    empty_sem = SemanticTokens(tokens=np.zeros(0, np.int64), provenance=_prov("semantic"))
    empty_codes = FineCodes(codes=np.zeros((8, 0), np.int64), provenance=_prov("fine"))
    empty_audio = Audio(samples=np.zeros(0, np.float32), provenance=_prov("decode"))
    for art in (empty_sem, empty_codes, empty_audio):
        assert render_mod.render(art, width=200, height=100).shape == (100, 200, 3)


def test_short_and_long_audio(arts):
    tiny = Audio(samples=np.array([0.1, -0.1, 0.2], np.float32), provenance=_prov("decode"))
    assert render_mod.render_audio(tiny, width=200, height=200).shape == (200, 200, 3)
    long = Audio(samples=np.zeros(24000 * 30, np.float32), provenance=_prov("decode"))
    assert render_mod.render_audio(long, width=300, height=200).shape == (200, 300, 3)


def test_wrong_inputs_raise_clear_errors(arts):
    with pytest.raises(ArtifactError, match="Nothing to render"):
        render_mod.render("not an artifact")
    with pytest.raises(ArtifactError, match="render_codes takes coarse or fine"):
        render_mod.render_codes(arts["semantic"])
    with pytest.raises(ArtifactError, match="render_semantic takes semantic"):
        render_mod.render_semantic(arts["fine"])
    with pytest.raises(ValueError, match="at least 64x64"):
        render_mod.render(arts["fine"], width=10, height=10)


def test_no_pyplot_state_is_touched(arts):
    import sys

    render_mod.render(arts["semantic"], width=200, height=100)
    if "matplotlib.pyplot" in sys.modules:  # another test may import it; then no figures of ours are open
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []
