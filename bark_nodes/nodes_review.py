"""Quality check (bark_core.quality) and human review (bark_core.label) of a take.

The automatic check points at problems (noise, clipping, silence, no speech, odd speaking rate);
only a person who listened can approve a take for public use. Both results ride along with the
AUDIO, so Bark Review records the quality summary the reviewer saw, and Bark Save Labelled Audio
writes review state and quality summary into the file's label.
"""

from __future__ import annotations

import logging
from typing import Any

from bark_core import label as review
from bark_core import quality

from . import _comfy
from ._api import io
from .audio import QUALITY_KEY, one_clip, quality_for, with_entry
from .types import CATEGORY

log = logging.getLogger("bark_nodes")

DECISIONS = ("approve", "reject")


class BarkQualityCheck(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkQualityCheck",
            display_name="Bark Quality Check",
            category=CATEGORY,
            description="Measures a take (noise, clipping, loudness, silences, speaking rate, whether it sounds "
                        "like speech) and flags what a listener should check, with the figure behind each "
                        "remark. It does not replace listening: approve or reject with Bark Review.",
            is_output_node=True,
            inputs=[
                io.Audio.Input("audio", tooltip="The take to check (any AUDIO)."),
                io.String.Input("text", multiline=True, default="", optional=True,
                                tooltip="The words the take should say, for the speaking-rate check. Empty: "
                                        "taken from the Bark stages that made the audio, when known."),
                io.Combo.Input("expect", options=list(quality.EXPECT), default="speech",
                               tooltip="speech: all checks. music: Bark's songs and sound effects (no speech "
                                       "checks). any: technical checks only (noise, clipping, level)."),
                io.Boolean.Input("asr", default=False,
                                 tooltip="Also transcribe with pocketsphinx (English, approximate) and compare "
                                         "with the text; needs pip install pocketsphinx, else noted as skipped."),
            ],
            outputs=[
                io.String.Output(display_name="report", tooltip="The report for people: verdict, flags, figures."),
                io.String.Output(display_name="json", tooltip="The full report as JSON."),
                io.Boolean.Output(display_name="passed", tooltip="False when any check failed."),
                io.Audio.Output(display_name="audio", tooltip="The same audio, carrying the report to Bark "
                                                              "Review and Bark Save Labelled Audio."),
            ],
        )

    @classmethod
    def execute(cls, audio: Any, expect: str = "speech", asr: bool = False, text: str = "") -> io.NodeOutput:
        _comfy.check_interrupt()
        art = one_clip(audio, "Bark Quality Check")
        text = (text or "").strip() or None
        report = quality.check(art, text=text, expect=expect, asr=asr)
        out = with_entry(audio, QUALITY_KEY, art, report=report)
        summary = report.to_text()
        return io.NodeOutput(summary, report.to_json(), bool(report.passed), out, ui={"text": [summary]})


def describe_review(r: review.Review) -> str:
    if r.state == "unreviewed":
        return f"unreviewed: take {r.applies_to} has no recorded decision."
    whose = f" (inherited from take {r.artifact_id})" if r.inherited else ""
    note = f"; note: {r.note}" if r.note else ""
    return f"{r.state} by {r.reviewer} at {r.time} for take {r.applies_to}{whose}{note}"


class BarkReview(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BarkReview",
            display_name="Bark Review",
            category=CATEGORY,
            description="Records a person's decision about a take: approve (fit for use) or reject, with the "
                        "reviewer's name and a note. Listen first (Preview Audio). Bark Save Labelled Audio "
                        "with public on saves only approved takes. Decisions are stored per take in ComfyUI's "
                        "user folder (bark/reviews) and apply to audio derived from the take too.",
            is_output_node=True,
            inputs=[
                io.Audio.Input("audio", tooltip="The take you listened to."),
                io.Combo.Input("decision", options=list(DECISIONS), default="approve",
                               tooltip="approve: fit for use, public use included. reject: must not be used; "
                                       "say why in the note. A later decision replaces the earlier one; the "
                                       "file keeps the history."),
                io.String.Input("reviewer", default="",
                                tooltip="Your name (required): the decision is traced to the person who listened."),
                io.String.Input("note", multiline=True, default="",
                                tooltip="Why: what you listened for, or what is wrong. Stays in the review "
                                        "record; not written into files."),
            ],
            outputs=[io.Audio.Output(display_name="audio", tooltip="The same audio, for the saver."),
                     io.String.Output(display_name="state", tooltip="The recorded decision in words.")],
        )

    @classmethod
    def execute(cls, audio: Any, decision: str = "approve", reviewer: str = "", note: str = "") -> io.NodeOutput:
        if decision not in DECISIONS:
            raise review.ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}.")
        art = one_clip(audio, "Bark Review")
        record = review.approve if decision == "approve" else review.reject
        store = _comfy.review_dir()
        record(art, reviewer, note, store=store, quality=quality_for(audio, art))
        state = describe_review(review.review_state(art, store=store))
        log.info("Bark: review recorded: %s", state)
        return io.NodeOutput(audio, state, ui={"text": [state]})


NODES = [BarkQualityCheck, BarkReview]
