"""Labels to doubt: the cross-validated detector of suspected label errors, and every model's
metrics and paired tests with and without the suspected test faces."""

from facebench.compare.label_errors.detector import (AGE_DETECTOR, DETECTOR_MODEL, GENDER_DETECTOR, GENDER_THRESHOLD,
                                                     detector_choice, detector_features, detector_model, detector_name,
                                                     empty_issues, predict_out_of_fold, rules_from_config,
                                                     suspect_labels, suspect_labels_for_run)
from facebench.compare.label_errors.with_without import label_metrics, label_metrics_for_run

__all__ = ["AGE_DETECTOR", "DETECTOR_MODEL", "GENDER_DETECTOR", "GENDER_THRESHOLD", "detector_choice",
           "detector_features", "detector_model", "detector_name", "empty_issues", "label_metrics",
           "label_metrics_for_run", "predict_out_of_fold", "rules_from_config", "suspect_labels",
           "suspect_labels_for_run"]
