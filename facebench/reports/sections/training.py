"""Training curves of each CNN, and whether its training had finished.

:func:`training_states` reads each CNN's per-epoch history at the report's training
fraction and says, per trial, whether the model stopped while its validation loss was
still falling (its lowest ``val_loss`` at its last epoch) or ran fewer epochs than its
``epochs`` budget without early stopping explaining it (training was cut short). The
answer section puts the same finding next to its learned-vs-hand-crafted verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from facebench.reports import plots
from facebench.reports.summary import frac


@dataclass
class TrainingState:
    """How one CNN unit's training ended."""

    model: str
    trial: int
    fraction: float
    epochs_run: int
    budget: int | None  # the configured ``epochs``
    best_epoch: int | None  # 1-based epoch of the lowest val_loss (None without val_loss)
    patience: int | None

    @property
    def still_falling(self) -> bool:
        """The lowest validation loss is at the last epoch: more epochs would likely help."""
        return self.best_epoch is not None and self.best_epoch == self.epochs_run

    @property
    def cut_short(self) -> bool:
        """Fewer epochs than the budget, and early stopping does not explain it."""
        if self.budget is None or self.epochs_run >= self.budget:
            return False
        stopped_early = (
            self.patience is not None and self.best_epoch is not None and self.epochs_run - self.best_epoch >= self.patience
        )
        return not stopped_early

    @property
    def unfinished(self) -> bool:
        return self.still_falling or self.cut_short


def cnn_config_name(run, model: str) -> str:
    """The name under ``[cnn.<name>]`` of the config that trained ``model``."""
    info = run.model_info(model)
    listed = (run.config.get("models") or {}).get("cnn") or []
    for name in (info.get("estimator"), info.get("params", {}).get("name")):
        if name and name in listed:
            return str(name)
    if len(listed) == 1:
        return str(listed[0])
    return model.removeprefix("cnn-")


def _budget(run, model: str) -> tuple[int | None, int | None]:
    """``(epochs, patience)`` the model was configured with (None when not recorded)."""
    params = dict(run.model_info(model).get("params") or {})
    configured = (run.config.get("cnn") or {}).get(cnn_config_name(run, model)) or {}
    for key in ("epochs", "patience"):
        if key not in params and key in configured:
            params[key] = configured[key]

    def as_int(v: Any) -> int | None:
        try:
            return int(v)
        except (TypeError, ValueError):
            return None  # "none" / None: no early stopping

    return as_int(params.get("epochs")), as_int(params.get("patience"))


def _state(run, trial: int, fraction: float, model: str, h: pd.DataFrame) -> TrainingState:
    budget, patience = _budget(run, model)
    best = None
    if "val_loss" in h.columns and h["val_loss"].notna().any():
        best = int(h["val_loss"].to_numpy(dtype=float).argmin()) + 1
    return TrainingState(model, trial, fraction, len(h), budget, best, patience)


def _main_units(run) -> dict[str, dict[tuple[int, float, str], pd.DataFrame]]:
    """Each CNN's histories at the report's fraction (its largest when it lacks that one)."""
    out = {}
    for model in dict.fromkeys(k[2] for k in run.histories):
        units = {k: h for k, h in run.histories.items() if k[2] == model and len(h)}
        if not units:
            continue
        fractions = sorted({k[1] for k in units})
        f = run.main_fraction if run.main_fraction in fractions else fractions[-1]
        out[model] = {k: h for k, h in sorted(units.items()) if k[1] == f}
    return out


def training_states(run) -> dict[str, list[TrainingState]]:
    """``{model: [TrainingState per trial]}`` at the report's training fraction."""
    return {
        model: [_state(run, t, f, model, h) for (t, f, _), h in units.items()] for model, units in _main_units(run).items()
    }


def _note(state: TrainingState, name: str) -> str:
    if state.best_epoch is None:
        text = f"{name}: {state.epochs_run} epochs"
    else:
        text = f"{name}: lowest validation loss at epoch {state.best_epoch} of {state.epochs_run}"
    if state.still_falling:
        text += " (still falling when training stopped)"
    if state.cut_short:
        text += f"; cut short before its {state.budget}-epoch budget"
    return text


def training_section(run) -> dict[str, Any]:
    """One figure per CNN, every trial at the report's fraction, and how each training ended."""
    out: dict[str, Any] = {"figures": []}
    if not run.histories:
        cnns = [m for m in run.models if run.family(m) == "learned"]
        out["message"] = (
            "This run has no CNN, so there are no training curves."
            if not cnns
            else f"No training history was saved for {', '.join(cnns)} (histories/ is empty)."
        )
        return out
    for model, units in _main_units(run).items():
        chosen = {f"trial {t}": h for (t, _, _), h in units.items()}
        f = next(iter(units))[1]
        notes = [_note(_state(run, t, fr, model, h), f"trial {t}") for (t, fr, _), h in units.items()]
        out["figures"].append(
            {"model": model, "fraction": frac(f), "uri": plots.training_curves_figure(chosen, model), "note": "; ".join(notes)}
        )
    return out
