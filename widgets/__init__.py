"""bark_studio: a Jupyter studio for running Bark stage by stage on top of ``bark_core``.

``Studio`` is the ipywidgets front end; ``Session`` is the same studio without widgets, for scripts
and tests. Both keep every generation step in ``bark_core``.

    from bark_studio import Studio, tiny_model_dir
    studio = Studio(models=tiny_model_dir())   # or models="suno" for Suno's real weights
    studio
"""

from __future__ import annotations

from typing import Any

from bark_core import tiny_model_dir  # re-exported so the quickstart needs one import line

from .session import DEFAULTS, STAGES, RunCancelled, Session, StageResult, StudioError, StudioTake

__all__ = ["Studio", "Session", "StudioTake", "StageResult", "StudioError", "RunCancelled", "STAGES", "DEFAULTS",
           "tiny_model_dir"]


def __getattr__(name: str) -> Any:
    # ipywidgets is an optional dependency (the "jupyter" extra): import it only when the widget is asked for
    if name == "Studio":
        try:
            from .studio import Studio
        except ImportError as exc:
            if "ipywidgets" not in str(exc):
                raise
            raise ImportError("bark_studio.Studio needs ipywidgets 8: pip install 'bark-stages[jupyter]' "
                              "(bark_studio.Session works without it).") from exc
        return Studio
    raise AttributeError(f"module 'bark_studio' has no attribute {name!r}")
