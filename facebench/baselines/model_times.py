"""Measured fit and predict seconds of the registry's models, for ``facebench models``.

Figures, not estimates: medians over 3 splits of the 5k UTKFace subset (3,977 training
faces incl. tuning, ~995 test faces; HOG / LBP / colour features computed beforehand),
one unit per model in one of two worker processes of one thread each, on 2 AMD EPYC cores
shared with other work (load average 5-17, so upper bounds; libsvm's run under the heavier
load), 2026-12-06; the linear and ridge models again after the ridge head's leave-one-out went
through one SVD (load 5-6). The RBF models were measured under
both libraries by ``benchmarks/svm_backends.py``, the others by a ``facebench run`` of them
(benchmarks/RESULTS.md, "oneDAL against libsvm" and "Fit and predict seconds of the other models").
"""

from __future__ import annotations

__all__ = ["LIBRARY_NAMES", "TIMES_5K", "typical_times"]

#: How ``facebench models`` names each library.
LIBRARY_NAMES = {"onedal": "oneDAL", "libsvm": "libsvm", "sklearn": "scikit-learn"}

#: ``{model: {library: (fit seconds, predict seconds)}}``; library ``"onedal"`` / ``"libsvm"``
#: for the RBF models, ``"sklearn"`` for the others; predict None where only the fit was measured.
TIMES_5K: dict[str, dict[str, tuple[float, float | None]]] = {
    "hog+svm": {"onedal": (18.8, 0.31), "libsvm": (154.6, 5.63)},
    "lbp+svm": {"onedal": (17.1, 0.34), "libsvm": (165.1, 6.58)},
    "hog+lbp+svm": {"onedal": (15.9, 0.17), "libsvm": (184.8, 7.53)},
    "hog+lbp+color+svm": {"onedal": (16.7, 0.22), "libsvm": (168.8, 5.55)},
    "pixels+pca+svm": {"onedal": (9.7, 0.09), "libsvm": (107.7, 3.11)},
    "hog+lbp+svr": {"onedal": (28.7, 0.68), "libsvm": (162.0, 12.04)},
    "hog6+lbp+svr": {"onedal": (26.8, 0.59), "libsvm": (163.4, 15.23)},
    "hog6+lbp+color+svr": {"onedal": (39.3, 0.26), "libsvm": (187.4, 11.84)},
    "dummy": {"sklearn": (0.001, 0.0)},
    "hog+linsvm": {"sklearn": (17.2, 0.01)},
    "hog+lbp+linsvm": {"sklearn": (26.7, 0.02)},
    "hog+ridge": {"sklearn": (12.7, 0.01)},
    "lbp+ridge": {"sklearn": (1.8, 0.01)},
    "hog+lbp+ridge": {"sklearn": (32.6, 0.02)},
    # the heads only, embeddings cached: libsvm's and the logistic and ridge heads' fits from
    # benchmarks/pretrained_models.py (load ~10, upper bounds); oneDAL's from a standard trial's
    # timings.csv (benchmarks/standard_before_after.sh, one split, load ~8)
    "dlib128+svm": {"onedal": (0.9, 0.05), "libsvm": (0.6, None)}, "dlib128+logreg": {"sklearn": (2.3, None)},
    "dlib128+svr": {"onedal": (1.1, 0.05), "libsvm": (2.0, None)}, "dlib128+ridge": {"sklearn": (1.0, None)},
}


def typical_times(name: str, svm_library: str) -> tuple[str, float, float | None] | None:
    """``(library, fit s, predict s)`` of a model as this machine would fit it, or None when not measured.

    ``svm_library``: the library that fits the RBF SVMs here (``"onedal"`` / ``"libsvm"``).
    """
    measured = TIMES_5K.get(name)
    if not measured:
        return None
    library = svm_library if svm_library in measured else next(iter(measured))
    fit, predict = measured[library]
    return library, fit, predict
