"""Running a plan: which units still need running, executing them (joblib or Dask), the unit bodies,
the order they start in, the features they share, and gathering their results."""

from facebench.compare.running.gather import aggregate, summary_table
from facebench.compare.running.executor import UnitsFailed, execute, log_to, parallel, units_to_run
from facebench.compare.running.unit_bodies import (EPOCH_LISTENERS, decoded_for_cnn, fit_classical, fit_cnn, prepare_features,
                                                   run_classical_unit, run_cnn_unit)

__all__ = ["EPOCH_LISTENERS", "UnitsFailed", "aggregate", "decoded_for_cnn", "execute", "fit_classical", "fit_cnn", "log_to", "parallel",
           "prepare_features", "run_classical_unit", "run_cnn_unit", "summary_table", "units_to_run"]
