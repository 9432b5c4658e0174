"""What goes on a file that leaves the house: the watermark, the label metadata, the human review
that public use needs, and the labelled export to WAV, FLAC, MP3 or OGG."""

from .export import DEFAULT_BITRATES, FORMATS, MP3_RATES, export_audio, normalize_samples, save_wav
from .metadata import LABEL_SCHEMA, LabelError, build_metadata, label, read_label, summary_line
from .review import (
    NotApprovedError,
    Review,
    ReviewError,
    ReviewStore,
    approve,
    reject,
    require_public_ok,
    review_history,
    review_metadata,
    review_state,
)
from .watermark import DEFAULT_STRENGTH_DB, DEFAULT_THRESHOLD, Detection, WatermarkError, detect, embed, key_kind

__all__ = [
    "DEFAULT_BITRATES", "FORMATS", "MP3_RATES", "export_audio", "normalize_samples", "save_wav", "LABEL_SCHEMA",
    "LabelError", "build_metadata", "label", "read_label", "summary_line", "NotApprovedError", "Review",
    "ReviewError", "ReviewStore", "approve", "reject", "require_public_ok", "review_history", "review_metadata",
    "review_state", "DEFAULT_STRENGTH_DB", "DEFAULT_THRESHOLD", "Detection", "WatermarkError", "detect", "embed",
    "key_kind",
]
