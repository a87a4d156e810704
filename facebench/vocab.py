"""One word per rule: the metrics (task, direction, label), the age range and bands, the objectives.

Every reader and writer of figures takes these from here: the metric writer, the run
directory's columns, the report's tables and verdicts, the sweep's objectives and its
best-point rule, the choice of default models for ``predict``. The module imports nothing
of facebench, so any package may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: UTKFace's age range in whole years; predictions are clipped to it.
AGE_MIN = 0
AGE_MAX = 116

# Bands of the design: babies, children, teenagers, then decades up to 70+.
AGE_BAND_EDGES = (0, 3, 13, 20, 30, 40, 50, 60, 70)
AGE_BANDS = ("0-2", "3-12", "13-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")

TASKS = ("age", "gender")


def age_band(ages) -> np.ndarray:
    """Age band label (``"0-2"`` ... ``"70+"``) for each age.

    >>> age_band([0, 5, 19, 20, 71]).tolist()
    ['0-2', '3-12', '13-19', '20-29', '70+']
    """
    ages = np.asarray(ages, dtype=float)
    idx = np.searchsorted(AGE_BAND_EDGES, ages, side="right") - 1
    return np.asarray(AGE_BANDS, dtype=object)[np.clip(idx, 0, len(AGE_BANDS) - 1)]


@dataclass(frozen=True)
class Metric:
    """A metric as every table and verdict treats it."""

    name: str
    task: str  # "age" | "gender" | "" (counts belong to no task)
    lower_is_better: bool | None  # None: no direction (a count)
    label: str
    decimals: int = 3


AGE_METRICS = ("mae", "mse", "rmse", "r2")
GENDER_METRICS = (
    "accuracy", "precision_male", "recall_male", "f1_male", "precision_female", "recall_female",
    "f1_female", "precision_macro", "recall_macro", "f1_macro", "roc_auc",
)
#: Counts written beside the metrics (confusion matrix and test faces): no direction, no interval.
COUNT_METRICS = ("tn", "fp", "fn", "tp", "n")

_LABELS = {
    "mae": "MAE (years)", "mse": "MSE", "rmse": "RMSE (years)", "r2": "R²", "accuracy": "Accuracy",
    "precision_male": "Precision (male)", "recall_male": "Recall (male)", "f1_male": "F1 (male)",
    "precision_female": "Precision (female)", "recall_female": "Recall (female)", "f1_female": "F1 (female)",
    "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)", "f1_macro": "F1 (macro)",
    "roc_auc": "ROC-AUC", "n": "n",
}
_DECIMALS = {"mae": 2, "rmse": 2, "mse": 1, "r2": 3}

METRICS: dict[str, Metric] = {
    **{m: Metric(m, "age", m != "r2", _LABELS[m], _DECIMALS[m]) for m in AGE_METRICS},
    **{m: Metric(m, "gender", False, _LABELS[m]) for m in GENDER_METRICS},
    **{m: Metric(m, "", None, _LABELS.get(m, m), 0) for m in COUNT_METRICS},
}

#: The headline metric of each task: what "best" means for a model on that task.
HEADLINE = {"age": "mae", "gender": "accuracy"}


def lower_is_better(metric: str) -> bool | None:
    """True for errors (MAE, MSE, RMSE), False for scores, None for counts and unknown names."""
    known = METRICS.get(metric)
    return None if known is None else known.lower_is_better


def direction(metric: str) -> str | None:
    """``"min"`` when lower is better, ``"max"`` when higher is, None for counts and unknown names."""
    lower = lower_is_better(metric)
    return None if lower is None else ("min" if lower else "max")


def best_index(values, metric: str):
    """The label of the best of ``values`` (a pandas Series) for ``metric``: idxmin or idxmax."""
    return values.idxmin() if lower_is_better(metric) else values.idxmax()


def metric_label(metric: str) -> str:
    return METRICS[metric].label if metric in METRICS else metric


@dataclass(frozen=True)
class Objective:
    """What a sweep optimises: a task's headline metric on the validation part."""

    key: str  # "age_mae" | "gender_accuracy"
    task: str
    metric: str
    label: str

    @property
    def column(self) -> str:
        """The column of the sweep's points table that holds it."""
        return f"val_{self.key}"

    @property
    def lower_is_better(self) -> bool:
        return bool(lower_is_better(self.metric))

    @property
    def direction(self) -> str:
        """``"min"`` or ``"max"``."""
        return "min" if self.lower_is_better else "max"

    @property
    def optuna_direction(self) -> str:
        return "minimize" if self.lower_is_better else "maximize"


OBJECTIVES = {
    f"{task}_{HEADLINE[task]}": Objective(f"{task}_{HEADLINE[task]}", task, HEADLINE[task], label)
    for task, label in (("age", "age MAE (years)"), ("gender", "gender accuracy"))
}
#: The sweep's objective may also be "both": the Pareto front of the two.
OBJECTIVE_CHOICES = (*OBJECTIVES, "both")
