"""Render jobs: a manifest of many lines, each with its own voice and seed, rendered locally or on a
Ray cluster into labelled, content-addressed files with a resumable results log and a report.

Built on labelled output (the ``label`` floor); Ray is imported only when a job asks for it.
"""

from .manifest import (
    DEFAULT_SETTINGS,
    OUTPUT_FORMATS,
    ROW_FIELDS,
    SETTINGS,
    JobError,
    Manifest,
    ManifestError,
    Problem,
    Row,
    load_manifest,
)
from .plan import ModelSpec, OutputOptions, Plan, Task, plan_job, row_seed
from .render import JobProgress, JobSummary, LocalBackend, prepare, render_job, split_done
from .report import REPORT_CSV, REPORT_HTML, write_report
from .results import LOG_NAME, ResultsLog
from .worker import RowRenderer, RowResult

__all__ = [
    "DEFAULT_SETTINGS", "OUTPUT_FORMATS", "ROW_FIELDS", "SETTINGS", "JobError", "Manifest", "ManifestError", "Problem",
    "Row", "load_manifest", "ModelSpec", "OutputOptions", "Plan", "Task", "plan_job", "row_seed", "JobProgress",
    "JobSummary", "LocalBackend", "prepare", "render_job", "split_done", "REPORT_CSV", "REPORT_HTML", "write_report",
    "LOG_NAME", "ResultsLog", "RowRenderer", "RowResult",
]
