"""What each method sees: the teaching views stored in the run directory, as drawn by
:func:`facebench.reports.drawing.views_section` (None, or ``{"intro", "figures"}``).

Every string is escaped by the template; only ``data:image/`` URIs are kept as images.
The report reads only files: no model is loaded here.
"""

from __future__ import annotations

import warnings
from typing import Any

from facebench.errors import UserError

from facebench.reports.drawing import views_section


def seen_section(run) -> dict[str, Any] | None:
    """The section's figures, a message when they cannot be drawn, or None (no section)."""
    try:
        result = views_section(run)
    except UserError as exc:  # a piece the section needs is not in this run directory
        return {"intro": "", "figures": [], "message": f"Not shown for this run: {exc}"}
    except Exception as exc:  # a broken optional section must not cost the user the whole report
        warnings.warn(f"the 'what each method sees' section failed: {exc!r}", stacklevel=2)
        return {"intro": "", "figures": [], "message": f"This section could not be built: {exc}"}
    if not result:
        return None
    figures = [
        {"title": str(f.get("title") or ""), "image": str(f["image"]), "caption": str(f.get("caption") or "")}
        for f in result.get("figures", [])
        if str(f.get("image", "")).startswith("data:image/")
    ]
    return {"intro": str(result.get("intro") or ""), "figures": figures, "message": ""}
