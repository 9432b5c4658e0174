"""Custom link types of the pack, prefixed BARK_ so they never clash with another pack's."""

from __future__ import annotations

from ._api import io

Models = io.Custom("BARK_MODELS")
Voice = io.Custom("BARK_VOICE")
Semantic = io.Custom("BARK_SEMANTIC")
Coarse = io.Custom("BARK_COARSE")
Fine = io.Custom("BARK_FINE")

CATEGORY = "audio/Bark"
SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF


def seed_input(tooltip: str = "Seed of this stage's sampler. The same inputs and seed give the same tokens "
               "on the same device.") -> io.Int.Input:
    """A seed widget with ComfyUI's control-after-generate (fixed / increment / randomize)."""
    return io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True, tooltip=tooltip)


def models_input() -> io.Input:
    return Models.Input("models", tooltip="Bark models from the Bark Model Loader node.")


def voice_input() -> io.Input:
    return Voice.Input("voice", optional=True,
                       tooltip="Speaker (Bark's history prompt). Leave unconnected for a random speaker.")
