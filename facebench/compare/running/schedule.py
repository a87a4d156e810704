"""The order in which a run's units start, from what each is expected to cost.

Two workers take classical units from one list; the longest start first, so that the
run does not end with one long fit running alone on one core while the other idles.
A unit's expected seconds come from its model's fit cost at its training size
(:func:`facebench.baselines.expected_fit_cost`, measured with libsvm) and the library
that fits its RBF SVMs: oneDAL fits them about :data:`ONEDAL_SPEEDUP` times faster,
which moves a kernel model behind the ridge models on the full UTKFace.

CNN units run after the classical ones, alone on every core. Starting the CNN first beside
one classical worker would need TensorFlow held to one thread for the whole of its training.
On the development machine (2 virtual AMD EPYC cores, quiet, TensorFlow's Eigen kernels, before
facebench turned oneDNN's on) that costs the CNN nothing (229 images/s on one thread, 218 on two), but the two cores together train only 1.0-1.4x what
one does, so the overlap would win little there, and it would lose on a machine where
TensorFlow's second thread does pay (benchmarks/RESULTS.md, "TensorFlow's second thread").
"""

from __future__ import annotations

from facebench.compare.planning.plan import Unit

#: How many times faster oneDAL fits the RBF heads than libsvm, for scheduling only: on the
#: full UTKFace the SVC 5.8x, the SVR 4.0x (the lower is used; benchmarks/RESULTS.md).
ONEDAL_SPEEDUP = 4.0

#: Seconds per training image and epoch of a CNN at 64x64 on 2 cores (``default``: about
#: 30 s per epoch on 18.4k faces); scaled by the image area and the epochs.
CNN_S_PER_IMAGE_EPOCH = 30.0 / 18_400


def expected_seconds(unit: Unit) -> float:
    """Rough seconds a unit takes on the 2-core machine, for ordering only."""
    from facebench.baselines import MODELS, expected_fit_cost

    spec, n_train = unit.spec, len(unit.train)
    if spec.kind == "cnn":
        return CNN_S_PER_IMAGE_EPOCH * n_train * spec.params["epochs"] * (spec.image_size / 64) ** 2
    if MODELS.get(spec.base, ((), ""))[1] == "dummy":  # a prior or a median: no fit to speak of
        return 0.0
    cost = expected_fit_cost(spec.base, n_train)
    if spec.svm_backend == "onedal":
        cost /= ONEDAL_SPEEDUP
    return cost * len(spec.tasks)


def longest_first(units: list[Unit]) -> list[Unit]:
    """``units`` in the order they should start: longest expected first (stable for equal ones)."""
    return sorted(units, key=expected_seconds, reverse=True)
