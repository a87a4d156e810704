"""Configuration and plan: presets, merging, validation once, named variants, the resolved plan of a run.

:func:`load_config` / :func:`resolve` give a :class:`~facebench.compare.planning.config.Resolved`
configuration; :func:`make_plan` turns it and the run's table and splits into a
:class:`Plan` of :class:`ModelSpec` and :class:`Unit` objects that every later stage reads.
"""

from facebench.compare.planning.config import (DEFAULTS, EXECUTION_KEYS, LABEL_DETECTORS, PRESETS, SPLIT_KEYS,
                                               Resolved, assemble, check_cnn_params, check_shared, config_diff, dumps, load_config,
                                               merge, resolve)
from facebench.compare.planning.plan import (LATER_CNN_KEYS, ModelSpec, Plan, Unit, classical_spec, cnn_spec,
                                             definition_digest, drop_suspected, make_plan, model_specs)
from facebench.compare.planning.table import prepare_table
from facebench.compare.planning.variants import (build_classical, build_model, check_classical_variant, classical_tasks,
                                                 cnn_presets, settable_params)

__all__ = ["DEFAULTS", "EXECUTION_KEYS", "LABEL_DETECTORS", "LATER_CNN_KEYS", "PRESETS", "SPLIT_KEYS", "ModelSpec", "Plan",
           "Resolved", "Unit", "assemble", "build_classical", "check_cnn_params", "build_model", "check_classical_variant", "check_shared",
           "classical_spec", "classical_tasks", "cnn_presets", "cnn_spec", "config_diff", "definition_digest",
           "drop_suspected", "dumps", "load_config", "make_plan", "merge", "model_specs", "prepare_table", "resolve",
           "settable_params"]
