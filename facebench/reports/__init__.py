"""Reports: a run directory -> one self-contained ``report.html``; a dataset -> ``explore.html``.

``write_report(run_dir)`` reads only the run directory (docs/run-directory.md) and also
writes every report table to ``RUN_DIR/tables/`` as CSV, JSON and Markdown.
``write_explore(dataset, out_dir)`` writes ``out_dir/explore.html`` and ``out_dir/audit.json``
for a dataset from :func:`facebench.data.load_dataset`, with the report's look.
Both pages are Jinja2 templates with autoescape on, figures embedded as data URIs.
"""

from facebench.reports.explore import write_explore
from facebench.reports.plots import plot_history
from facebench.reports.report import load_run, write_report

__all__ = ["write_report", "write_explore", "load_run", "plot_history"]
