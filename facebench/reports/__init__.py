"""Reports: a run directory -> one self-contained ``report.html``; a dataset -> ``explore.html``.

``write_report(run_dir)`` reads only the run directory (docs/run-directory.md) and also
writes every report table to ``RUN_DIR/tables/`` as CSV, JSON and Markdown.
``write_comparison(run_dirs, out)`` puts several runs side by side on one page.
``write_explore(dataset, out_dir)`` writes ``out_dir/explore.html`` and ``out_dir/audit.json``
for a dataset from :func:`facebench.data.load_dataset`, with the report's look.
Every page is a Jinja2 template with autoescape on, figures embedded as data URIs.
``read_run`` (also exported as ``load_run``) is :func:`facebench.rundir.read.read_run`.
"""

from facebench.reports.comparison import write_comparison
from facebench.reports.explore import write_explore
from facebench.reports.plots import plot_history
from facebench.reports.render import write_report
from facebench.rundir.read import read_run

load_run = read_run

__all__ = ["write_report", "write_comparison", "write_explore", "load_run", "read_run", "plot_history"]
