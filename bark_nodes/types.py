"""Custom link types of the pack, prefixed BARK_ so they never clash with another pack's."""

from __future__ import annotations

from bark_core import constants as C

from ._api import io

Models = io.Custom("BARK_MODELS")
Voice = io.Custom("BARK_VOICE")
Semantic = io.Custom("BARK_SEMANTIC")
Coarse = io.Custom("BARK_COARSE")
Fine = io.Custom("BARK_FINE")

CATEGORY = "audio/Bark"
SEED_MAX = C.MAX_SEED  # what bark_core takes: 0..2**64-1, ComfyUI's seed range


def seed_input(tooltip: str = "Seed of this stage's sampler. The same inputs and seed give the same tokens "
               "on the same device.") -> io.Int.Input:
    """A seed widget with ComfyUI's control-after-generate (fixed / increment / randomize)."""
    return io.Int.Input("seed", default=0, min=0, max=SEED_MAX, control_after_generate=True, tooltip=tooltip)


def models_input() -> io.Input:
    return Models.Input("models", tooltip="Bark models from the Bark Model Loader node.")


def voice_input() -> io.Input:
    return Voice.Input("voice", optional=True,
                       tooltip="Speaker (Bark's history prompt). Leave unconnected for a random speaker.")


def watermark_input(node: str) -> io.Boolean.Input:
    """On by default: audio leaving a Bark node carries the watermark, so any saver keeps it."""
    return io.Boolean.Input("watermark", default=True, optional=True, label_on="on", label_off="OFF (debug only)",
                            tooltip=f"Put bark_core's inaudible watermark into the audio {node} hands on, so that "
                                    "any saver downstream (core SaveAudio, video nodes, previews) writes marked "
                                    "audio. Turn off only to study the raw output; that is logged as a warning.")
