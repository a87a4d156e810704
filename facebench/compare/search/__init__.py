"""The hyperparameter search (facebench sweep): its config, its points (the run's table, split and
unit bodies on the training part only), the Optuna study and the sweep directory it writes."""

from facebench.compare.search.study import sweep, sweep_dir_for
from facebench.compare.search.sweep_config import load_sweep_config

__all__ = ["load_sweep_config", "sweep", "sweep_dir_for"]
