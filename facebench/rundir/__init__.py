"""The run directory: the one contract between the runner and its readers.

Everything a run writes and everything a reader reads goes through this package:
paths, unit ids and file-safe names (:mod:`.layout`), units written whole and checked
on resume (:mod:`.units`), saved models and the models table (:mod:`.saved`), the
environment block (:mod:`.environment`), the lock (:mod:`.lock`), the teaching views
(:mod:`.views`) and ``read_run(dir) -> Run`` (:mod:`.read`). ``docs/run-directory.md``
describes the same files; a test checks it against what a real run writes.
"""

from facebench.rundir.layout import (
    FORMAT,
    check_run_dir,
    parse_unit_id,
    read_run_info,
    safe_name,
    unit_id,
)

__all__ = ["FORMAT", "check_run_dir", "parse_unit_id", "read_run_info", "safe_name", "unit_id"]
