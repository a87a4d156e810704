"""Statistics: the metrics of a unit, bootstrap intervals, paired tests with Holm's correction."""

from facebench.compare.stats.metrics import (age_bootstrap, age_metrics, bootstrap_indices, gender_bootstrap,
                                             gender_metrics, group_masks, holm, mcnemar, paired_age_test, paired_tests,
                                             percentile_interval, unit_metrics)

__all__ = ["age_bootstrap", "age_metrics", "bootstrap_indices", "gender_bootstrap", "gender_metrics", "group_masks",
           "holm", "mcnemar", "paired_age_test", "paired_tests", "percentile_interval", "unit_metrics"]
