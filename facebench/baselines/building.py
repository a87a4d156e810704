"""Building a registry model from its name: the features step, the head, the whole pipeline, and
what a fitted one predicts.

The names, their parts and what each is are :mod:`facebench.baselines.registry`;
:func:`make_model` puts the parts together (:func:`feature_step` and :func:`make_head`),
:func:`predict_outputs` turns a fitted model into per-image age or P(female) / gender.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.special import expit
from sklearn.compose import TransformedTargetRegressor
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC

from facebench.baselines.estimators import CappedPCA, HFlipAugmented, PairedTransform, TunedEstimator
from facebench.baselines.transformers import HFlipPairs, OnGray
from facebench.machine import memory_bytes

from facebench.baselines.registry import (
    AGE_RANGE, COLOR_FEATURES, FEATURES, FLIP_HEADS, FLIP_MAX_ROWS, GRIDS, MIRROR_AVERAGE_HEADS, MODEL_TASKS, MODELS,
    PCA_COMPONENTS, PRETRAINED_GRIDS, RIDGE_ALPHAS, _check_build, _check_model_task, _check_name,
    _check_task, _from_factory, _is_factory, _pretrained_names,
)

__all__ = ["feature_step", "make_head", "make_model", "predict_outputs", "svm_cache_mb", "uses_flip"]


# ---------------------------------------------------------------------------- building


def feature_step(name, task=None):
    """A fresh, stateless ``"features"`` step of a model: images in, feature rows out.

    Parameters
    ----------
    name : str
    task : {"age", "gender"}, optional
        Only a model added with a ``factory`` may build different features per
        task; by default its first task.
    """
    _check_name(name)
    if task is not None:
        _check_model_task(name, task)
    if _is_factory(name):
        return _from_factory(name, task or MODEL_TASKS[name][0], None, None).steps[0][1]
    feature_names, head = MODELS[name]
    features = _features(feature_names)
    return HFlipPairs(features) if head in FLIP_HEADS and not _pretrained_names(feature_names) else features


def make_head(name, task, random_state=None, n_jobs=None):
    """The unfitted part of a model after its features: a Pipeline on :func:`feature_step`'s output.

    ``Pipeline([("features", feature_step(name, task)), *make_head(name, task).steps])``
    is :func:`make_model`'s pipeline; parameters as there.
    """
    _check_build(name, task, random_state)
    if _is_factory(name):
        return _from_factory(name, task, random_state, n_jobs)[1:]
    return Pipeline(_head(MODELS[name][1], task, random_state, n_jobs, pretrained=bool(_pretrained_names(MODELS[name][0]))))


def make_model(name, task, random_state=None, n_jobs=None):
    """A fresh, unfitted model from the registry.

    Parameters
    ----------
    name : str
        A registry name (``list_models(task)`` gives the valid ones).
    task : {"age", "gender"}
        ``"gender"`` gives a classifier (0 male, 1 female), ``"age"`` a regressor.
    random_state : int, optional
        Seeds every random step (tuning sample and folds, randomized PCA,
        LinearSVC); the same seed and data give the same predictions.
    n_jobs : int, optional
        Parallel fits in the hyperparameter search.

    Returns
    -------
    model : sklearn.pipeline.Pipeline
        Input: an image stack ``(n_images, height, width)`` uint8. The first step,
        ``"features"``, is stateless; ``model[1:]`` works on its output.

    Raises
    ------
    ValueError
        For an unknown name or task, or a model that does not do the task.
    """
    _check_build(name, task, random_state)
    if _is_factory(name):
        return _from_factory(name, task, random_state, n_jobs)
    return Pipeline([("features", feature_step(name)), *make_head(name, task, random_state, n_jobs).steps])


def _features(names):
    if len(names) == 1:
        return FEATURES[names[0]]()
    if COLOR_FEATURES & set(names):  # one RGB stack in: the grayscale features see it in gray
        return FeatureUnion([(name, FEATURES[name]() if name in COLOR_FEATURES else OnGray(FEATURES[name]())) for name in names])
    return FeatureUnion([(name, FEATURES[name]()) for name in names])


def _head(head, task, random_state, n_jobs, pretrained=False):
    """Steps after the features, as (name, estimator) pairs (``pretrained``: no mirror images, no PCA)."""
    if head == "dummy":
        return [("model", DummyClassifier(strategy="prior") if task == "gender" else DummyRegressor(strategy="median"))]
    if head == "ridge":
        # The leave-one-out through one SVD of the training rows: scikit-learn's default for
        # more rows than features eigendecomposes the covariance and then multiplies the rows
        # by a features x features matrix for every alpha, 1.5-2x slower on 3,977 HOG + LBP rows
        # for the same alpha and the same predictions (benchmarks/RESULTS.md, "ridge").
        return [("scale", StandardScaler()), ("model", RidgeCV(alphas=RIDGE_ALPHAS, gcv_mode="svd"))]
    if head == "logreg":
        estimator = LogisticRegression(max_iter=2000)
        grid = PRETRAINED_GRIDS[head] if pretrained else GRIDS[head]
        return [("scale", StandardScaler()), ("model", _tuned(estimator, grid, random_state, n_jobs))]
    if head == "linsvm":
        estimator = LinearSVC(dual=False, max_iter=5000, random_state=random_state)
        return [("scale", StandardScaler()), ("model", _tuned(estimator, GRIDS[head], random_state, n_jobs))]
    cache = svm_cache_mb()
    estimator = SVC(kernel="rbf", gamma="scale", cache_size=cache) if head == "svm" else SVR(kernel="rbf", gamma="scale", epsilon=1.0, cache_size=cache)
    if pretrained:  # 128 numbers already: scaled, then the kernel; no PCA, no mirror images
        prefix = ""
        if head == "svr":  # on the square root of the age (PRETRAINED_GRIDS says why)
            estimator = TransformedTargetRegressor(estimator, func=np.sqrt, inverse_func=np.square, check_inverse=False)
            prefix = "regressor__"
        return [("scale", StandardScaler()), ("model", _tuned(estimator, PRETRAINED_GRIDS[head], random_state, n_jobs,
                                                              prefix))]
    reduce = Pipeline([("scale", StandardScaler()), ("pca", CappedPCA(PCA_COMPONENTS, random_state=random_state))])
    if head in FLIP_HEADS:
        augmented = HFlipAugmented(estimator, max_rows=FLIP_MAX_ROWS[head], random_state=random_state,
                                   average_mirror=head in MIRROR_AVERAGE_HEADS)
        return [("reduce", PairedTransform(reduce)), ("model", _tuned(augmented, GRIDS[head], random_state, n_jobs, "estimator__"))]
    return [*reduce.steps, ("model", _tuned(estimator, GRIDS[head], random_state, n_jobs))]


def _tuned(estimator, grid, random_state, n_jobs, prefix=""):
    grid = {prefix + key: values for key, values in grid.items()}
    return TunedEstimator(estimator, grid, cv=3, max_tune_samples=3000, random_state=random_state, n_jobs=n_jobs)


def svm_cache_mb():
    """Kernel cache (MB) of the RBF SVC / SVR fits: a sixth of the machine's memory, at most 4,096.

    libsvm recomputes every kernel row that does not fit in its cache, and on the
    full UTKFace that dominates the fit: on 30,000 rows (faces + mirror images) an
    SVR took 465 s with scikit-learn's default-sized 1,000 MB cache and 81 s with
    4,000 MB; an SVC on 37,888 rows 358 s and 97 s (benchmarks/RESULTS.md). The
    cache is allocated as it fills, so small fits use little; two fits run at once,
    hence a sixth of the memory. ``FACEBENCH_SVM_CACHE_MB`` overrides it.
    """
    override = os.environ.get("FACEBENCH_SVM_CACHE_MB", "").strip()
    if override:
        try:
            value = int(override)
        except ValueError:
            value = 0
        if value < 1:
            from facebench.errors import UserError

            raise UserError(f"FACEBENCH_SVM_CACHE_MB must be a positive number of megabytes; got {override!r}")
        return value
    memory = memory_bytes()
    total_mb = memory // 2**20 if memory else 8192
    return int(max(200, min(4096, total_mb // 6)))


def uses_flip(model):
    """Whether a model (from :func:`make_model`) trains with mirror images.

    Such a model's ``"features"`` step outputs ``[f(x), f(mirror x)]``; the
    mirror half is used in fit only.
    """
    return isinstance(model.steps[0][1], HFlipPairs)


def predict_outputs(model, X, task):
    """Per-image predictions of a fitted model, as the compare module stores them.

    Parameters
    ----------
    model : fitted estimator
        A model from :func:`make_model` (on images) or its head (:func:`make_head`,
        on the features step's output).
    X : ndarray
        What ``model`` takes: images ``(n_images, height, width)`` or features.
    task : {"age", "gender"}

    Returns
    -------
    outputs : dict of str to ndarray of shape (n_images,)
        ``"age"``: float64 years, clipped to [0, 116]. ``"gender"``: ``"p_female"``,
        a float64 score in [0, 1], and ``"gender"``, int64 0 (male) / 1 (female).
        ``p_female`` is the class probability where the model has one (``dummy``:
        the training prior), otherwise the logistic of the decision function,
        ``1 / (1 + exp(-d))``: a monotone score, 0.5 on the decision boundary,
        right for ROC-AUC but not a calibrated probability. ``gender`` is
        always ``p_female > 0.5`` decided the model's way (``d > 0``).
    """
    _check_task(task)
    if task == "age":
        return {"age": np.clip(np.asarray(model.predict(X), dtype=np.float64), *AGE_RANGE)}
    classes = np.asarray(model.classes_)
    if hasattr(model, "decision_function") and len(classes) == 2:
        decision = np.asarray(model.decision_function(X), dtype=np.float64).reshape(-1)
        p_class1 = expit(decision)
        predicted = np.where(decision > 0, classes[1], classes[0])
    else:
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        p_class1 = proba[:, -1] if len(classes) == 2 else np.full(len(proba), float(classes[0] == 1))
        predicted = classes[np.argmax(proba, axis=1)]
    p_female = p_class1 if len(classes) != 2 or classes[1] == 1 else 1.0 - p_class1
    return {"p_female": p_female, "gender": predicted.astype(np.int64)}
