"""Which library fits the RBF SVC and SVR heads: oneDAL (scikit-learn-intelex) or libsvm.

scikit-learn's ``SVC`` and ``SVR`` wrap libsvm, single-threaded and slow on tens of
thousands of rows. scikit-learn-intelex (``sklearnex``) offers the same estimators
on oneDAL, with the same parameters, the same fitted attributes and the same
meaning of ``decision_function`` and ``predict``; on the full UTKFace an SVC head fits
in 19 s instead of 111 s at the same accuracy (benchmarks/RESULTS.md). It installs on
x86-64 only; elsewhere libsvm fits.

This module is the one place facebench imports ``sklearnex``, and it never patches
scikit-learn globally: :func:`use_backend` swaps the RBF SVC / SVR estimators inside
one unfitted model, and :func:`portable` turns a fitted model back into plain
scikit-learn types before it is saved, so a model file opens under the same
trusted-types check on a machine without ``sklearnex``.

oneDAL fits in the dtype it is given, and the registry's heads give it float32: the
features are float32 and the scaler, PCA and flip steps keep them. Fitted in float64, the
eight RBF heads took 1.1-2.0x longer on the 5k subset at the same tuned C and metrics
(benchmarks/RESULTS.md); tests/test_svm_float32.py checks that no step turns them into float64.
libsvm converts either to float64.

``svm_backend`` (config key) is ``"auto"`` (oneDAL where it is installed, else
libsvm), ``"onedal"`` (refused where it is not installed) or ``"libsvm"``.

oneDAL's SVC solver gives results that depend, in the last bits, on how many threads
fit it; facebench therefore fits every classical model under a fixed thread count
(:func:`facebench.compare.running.unit_bodies.classical_threads`), whatever the schedule.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.svm import SVC, SVR

__all__ = ["BACKENDS", "available", "backend_of", "portable", "resolve", "svm_params", "use_backend"]

BACKENDS = ("auto", "onedal", "libsvm")

log = logging.getLogger("facebench.svm")

#: What to install for the oneDAL backend (said by every message that needs it).
INSTALL = "pip install scikit-learn-intelex (x86-64 only)"

_ONEDAL: dict = {}


def _onedal_classes():
    """``{"SVC": cls, "SVR": cls}`` from sklearnex, or ``{}`` where it does not import."""
    if "classes" not in _ONEDAL:
        try:
            from sklearnex.svm import SVC as OneDALSVC
            from sklearnex.svm import SVR as OneDALSVR
        except Exception:  # noqa: BLE001 - not installed, or its native library does not load here
            _ONEDAL["classes"] = {}
        else:
            _ONEDAL["classes"] = {"SVC": OneDALSVC, "SVR": OneDALSVR}
    return _ONEDAL["classes"]


def available() -> bool:
    """Whether oneDAL's SVC and SVR import on this machine."""
    return bool(_onedal_classes())


def resolve(backend: str) -> str:
    """The library that fits: ``"onedal"`` or ``"libsvm"`` for a config's ``svm_backend``.

    Raises
    ------
    ValueError
        For a name outside :data:`BACKENDS`, or ``"onedal"`` where sklearnex is not installed
        (the message says what to install).
    """
    if backend not in BACKENDS:
        raise ValueError(f"svm_backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "auto":
        return "onedal" if available() else "libsvm"
    if backend == "onedal" and not available():
        raise ValueError(f"svm_backend = 'onedal' needs scikit-learn-intelex, which does not import here: {INSTALL}")
    return backend


def _kind(estimator) -> str | None:
    """``"SVC"`` / ``"SVR"`` for an RBF SVC or SVR of either library that the swap applies to, else None.

    An SVC asked for libsvm's Platt probabilities (``probability=True``) stays on libsvm:
    oneDAL would calibrate them another way.
    """
    if not isinstance(estimator, (SVC, SVR)) or getattr(estimator, "kernel", None) != "rbf":
        return None
    if isinstance(estimator, SVC) and getattr(estimator, "probability", False) is True:
        return None
    return "SVC" if isinstance(estimator, SVC) else "SVR"


def _is_onedal(estimator) -> bool:
    return type(estimator).__module__.startswith("sklearnex.")


def svm_params(model) -> list[str]:
    """The nested parameter names (``model.get_params(deep=True)``) of every swappable SVC / SVR."""
    if _kind(model):
        return [""]
    if not isinstance(model, BaseEstimator):
        return []
    return [key for key, value in model.get_params(deep=True).items() if _kind(value)]


def use_backend(model, backend: str):
    """``model`` (unfitted) with each RBF SVC / SVR fitted by ``backend``; returns the model.

    ``backend`` is a resolved name (:func:`resolve`). The estimators keep every
    parameter; a model without an RBF SVM is returned unchanged.
    """
    if backend not in ("onedal", "libsvm"):
        backend = resolve(backend)
    swapped = {key: _swap(value, backend) for key, value in _svms(model).items()}
    if "" in swapped:
        return swapped[""]
    if swapped:
        model.set_params(**swapped)
    return model


def _svms(model) -> dict:
    if _kind(model):
        return {"": model}
    return {key: value for key, value in model.get_params(deep=True).items() if _kind(value)}


def _swap(estimator, backend: str):
    kind = _kind(estimator)
    if backend == "onedal":
        target = _onedal_classes()[kind]
    else:
        target = SVC if kind == "SVC" else SVR
    if type(estimator) is target:
        return estimator
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k != "n_jobs"}
    return target(**params)


def backend_of(model) -> str | None:
    """The library of the RBF SVMs in a model (``"onedal"`` / ``"libsvm"``), or None when it has none."""
    found = _svms(model) if isinstance(model, BaseEstimator) else {}
    if not found:
        return None
    return "onedal" if any(_is_onedal(v) for v in found.values()) else "libsvm"


# --------------------------------------------------------------------------- saving


#: Fitted attributes of a oneDAL SVC / SVR that define its predictions, copied to the plain
#: scikit-learn estimator (its other private attributes are rebuilt below).
_FITTED = ("support_vectors_", "dual_coef_", "_dual_coef_", "intercept_", "_intercept_", "classes_",
           "class_weight_", "n_features_in_", "feature_names_in_", "shape_fit_", "fit_status_", "_sparse")


def portable(fitted):
    """``fitted`` with every oneDAL SVC / SVR inside it replaced by the equal scikit-learn estimator.

    The fitted attributes (support vectors, dual coefficients, intercepts, gamma,
    classes) are copied, so the scikit-learn estimator predicts what the oneDAL one
    did (through libsvm's prediction code, in float64: equal to about 1e-13 after a
    float64 fit, about 1e-6 relative after a float32 one), and the saved file
    holds only the types of ``TRUSTED_TYPES``. Objects are changed in place where they
    are estimators; the converted object is returned.
    """
    return _portable(fitted, set())


def _portable(obj, seen: set):
    if isinstance(obj, (SVC, SVR)) and _is_onedal(obj):
        return _to_sklearn(obj)
    if isinstance(obj, (np.ndarray, str, bytes, int, float, type(None))) or id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, list):
        return [_portable(v, seen) for v in obj]
    if isinstance(obj, tuple):
        items = [_portable(v, seen) for v in obj]
        return obj if all(a is b for a, b in zip(items, obj)) else type(obj)(items)
    if isinstance(obj, dict):
        return {k: _portable(v, seen) for k, v in obj.items()}
    if isinstance(obj, BaseEstimator):
        for key, value in list(vars(obj).items()):
            new = _portable(value, seen)
            if new is not value:
                setattr(obj, key, new)
    return obj


def _to_sklearn(estimator):
    plain = (SVC if isinstance(estimator, SVC) else SVR)(
        **{k: v for k, v in estimator.get_params(deep=False).items() if k != "n_jobs"})
    if not hasattr(estimator, "support_vectors_"):  # not fitted
        return plain
    for name in _FITTED:
        if hasattr(estimator, name):
            value = getattr(estimator, name)
            if isinstance(value, np.ndarray):  # libsvm predicts in float64; oneDAL keeps float32 input in float32
                value = np.array(value, dtype=np.float64 if value.dtype.kind == "f" else value.dtype)
            setattr(plain, name, value)
    plain.support_ = np.asarray(estimator.support_, dtype=np.int32)
    n_support = np.asarray(estimator._n_support, dtype=np.int32)
    n_vectors = len(plain.support_)  # scikit-learn's SVR keeps [n, n]
    plain._n_support = n_support if isinstance(plain, SVC) else np.array([n_vectors, n_vectors], dtype=np.int32)
    plain._gamma = float(estimator._gamma)
    plain._probA = plain._probB = np.empty(0, dtype=np.float64)
    iterations = np.asarray(estimator.n_iter_).reshape(-1)
    plain._num_iter = iterations.astype(np.int32)
    plain.n_iter_ = iterations.astype(np.int32) if isinstance(plain, SVC) else int(iterations[0])
    plain._effective_probability = False  # scikit-learn >= 1.9; never set on the models swapped
    return plain
