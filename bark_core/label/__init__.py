"""What goes on a file that leaves the house: the watermark, the label metadata (tags, IPTC XMP and
C2PA Content Credentials), the human review that public use needs, and the labelled export to WAV,
FLAC, MP3 or OGG."""

from .c2pa_manifest import C2PA_FORMATS, C2paSigningError, read_manifest
from .export import (
    DEFAULT_BITRATES,
    FORMATS,
    MP3_RATES,
    export_audio,
    labelled_wav_bytes,
    normalize_samples,
    save_wav,
)
from .metadata import LABEL_SCHEMA, LabelError, build_metadata, label, mark_output, read_label, summary_line
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
from .stream import (
    MAX_CHUNK_S,
    MAX_FINE_WINDOW,
    MIN_CHUNK_S,
    MIN_FINE_WINDOW,
    STREAM_FINE_WINDOW,
    StreamChunk,
    generate_stream,
)
from .tags import read_xmp
from .watermark import DEFAULT_STRENGTH_DB, DEFAULT_THRESHOLD, Detection, WatermarkError, detect, embed, key_kind
from .xmp import IPTC_DIGITAL_SOURCE_TYPE

__all__ = [
    "DEFAULT_BITRATES", "FORMATS", "MP3_RATES", "export_audio", "normalize_samples", "save_wav", "LABEL_SCHEMA",
    "LabelError", "build_metadata", "label", "read_label", "summary_line", "NotApprovedError", "Review",
    "ReviewError", "ReviewStore", "approve", "reject", "require_public_ok", "review_history", "review_metadata",
    "review_state", "DEFAULT_STRENGTH_DB", "DEFAULT_THRESHOLD", "Detection", "WatermarkError", "detect", "embed",
    "key_kind", "C2PA_FORMATS", "C2paSigningError", "read_manifest", "labelled_wav_bytes", "read_xmp",
    "IPTC_DIGITAL_SOURCE_TYPE", "mark_output", "MAX_CHUNK_S", "MIN_CHUNK_S", "StreamChunk", "generate_stream",
    "MAX_FINE_WINDOW", "MIN_FINE_WINDOW", "STREAM_FINE_WINDOW",
]
