"""The classical models: a registry of feature + estimator pipelines per task.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline` on an image
stack ``(n_images, height, width)`` uint8 (64x64 grayscale by default) whose
first step, ``"features"``, is a stateless feature transformer. So a caller can
compute ``F = model.named_steps["features"].transform(X)`` once per image set
and fit or predict ``model[1:]`` on ``F``: the result is the same as ``model``
on ``X``.

Hyperparameters are chosen inside ``fit`` by cross-validation on the training
rows only (:class:`TunedEstimator`: grid search on at most
``max_tune_samples`` training rows, then a refit of the best setting on all of
them), so fitting a model on the training part of a split is all a caller does.

Models (``MODELS``; a new combination is one line there)::

    name              task    features (64x64 gray)       estimator after the features
    dummy             both    pixels 4x4 (ignored)        majority class (prior) / median age
    hog+svm           gender  HOG 1764                    scaler -> PCA 256 -> SVC rbf    [flip]
    lbp+svm           gender  LBP 640                     same                            [flip]
    hog+lbp+svm       gender  HOG + LBP 2404              same                            [flip]
    pixels+pca+svm    gender  pixels 32x32 1024           same ("eigenfaces")             [flip]
    hog+linsvm        gender  HOG                         scaler -> LinearSVC
    hog+lbp+linsvm    gender  HOG + LBP                   scaler -> LinearSVC
    hog+ridge         age     HOG                         scaler -> RidgeCV
    lbp+ridge         age     LBP                         scaler -> RidgeCV
    hog+lbp+ridge     age     HOG + LBP                   scaler -> RidgeCV
    hog+lbp+svr       age     HOG + LBP                   scaler -> PCA 256 -> SVR rbf    [flip, <= 30k rows]
    hog6+lbp+svr      age     HOG 6x6 cells 2916 + LBP    same                            [flip, <= 30k rows]
    hog+lbp+color+svm gender  HOG + LBP + colour 384      scaler -> PCA 256 -> SVC rbf    [flip, RGB input]
    hog6+lbp+color+svr age    HOG 6x6 + LBP + colour      scaler -> PCA 256 -> SVR rbf    [flip, RGB input]

HOG: 9 orientations, 8x8-pixel cells (``hog6``: 6x6, finer; best for age on the 5k
subset), 2x2-cell blocks, L2-Hys, OpenCV backend.
LBP: P=8, R=1, uniform, 8x8 grid of cells. Colour: CIELAB mean and standard
deviation per cell of an 8x8 grid; models with it take RGB stacks (``input_color``)
and compute HOG and LBP on their gray conversion. Combinations are a ``FeatureUnion``.

Tuning grids (``GRIDS``; 3-fold CV, shuffled and seeded, stratified for gender,
on at most 3,000 training images, then a refit on all of them; accuracy for
gender, MAE for age):

* SVC: ``C`` in {1, 3, 10}, ``gamma="scale"`` (1 / (n_components * variance)).
* LinearSVC: ``C`` in {1e-5, 1e-4, 1e-3, 1e-2} (primal, squared hinge; standardised features).
* SVR: ``C`` in {10, 30, 100}, ``epsilon=1`` year, ``gamma="scale"``.
* Ridge: ``alpha`` in 11 values from 1 to 1e5 (log-spaced), by RidgeCV's
  efficient leave-one-out on all training images.

The RBF models are trained with horizontal-flip augmentation (``FLIP_HEADS``):
their ``"features"`` step is :class:`~facebench.baselines.features.HFlipPairs`
(features of each image and of its mirror image side by side), and
:class:`HFlipAugmented` fits on both halves as separate rows. The SVM predicts
from the first half only; the SVR averages its predictions for the face and its
mirror image (``MIRROR_AVERAGE_HEADS``: test-time flip, measured to help SVR and
not SVC). The features-once contract above still holds. ``uses_flip(model)`` tells
whether a model is one of them. SVR fits on at most 30,000 rows (``FLIP_MAX_ROWS``):
past 15,000 training images only a seeded subset brings its mirror copy.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone, is_classifier
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from facebench.baselines.features import ColorFeatures, HFlipPairs, HOGFeatures, LBPFeatures, OnGray, PixelFeatures

__all__ = [
    "AGE_RANGE",
    "FLIP_HEADS",
    "MODELS",
    "MODEL_TASKS",
    "TASKS",
    "CappedPCA",
    "HFlipAugmented",
    "TunedEstimator",
    "input_color",
    "list_models",
    "make_model",
    "predict_outputs",
    "svm_cache_mb",
    "uses_flip",
]

TASKS = ("age", "gender")
#: Valid ages (years); age predictions are clipped to it.
AGE_RANGE = (0.0, 116.0)

# ---------------------------------------------------------------------------- building blocks


class CappedPCA(TransformerMixin, BaseEstimator):
    """PCA to at most ``n_components`` dimensions (fewer when the data has fewer).

    A plain :class:`~sklearn.decomposition.PCA` fails when asked for more
    components than ``min(n_samples, n_features)``; this one keeps as many as
    there are, so the same pipeline works on a tiny stack and on the full data.

    Parameters
    ----------
    n_components : int, default=256
    whiten : bool, default=False
    random_state : int, RandomState or None
        Seed of the randomized SVD.
    """

    def __init__(self, n_components=256, whiten=False, random_state=None):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit the PCA.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        if isinstance(self.n_components, bool) or not isinstance(self.n_components, numbers.Integral) or self.n_components < 1:
            raise ValueError(f"n_components must be a positive int; got n_components={self.n_components!r}")
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        k = int(min(self.n_components, X.shape[0], X.shape[1]))
        solver = "randomized" if k < 0.8 * min(X.shape) else "full"
        self.pca_ = PCA(k, whiten=self.whiten, svd_solver=solver, random_state=self.random_state).fit(X)
        return self

    def transform(self, X):
        """Project onto the components.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components_kept)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        return self.pca_.transform(X)


def _with_inner_tags(tags, estimator):
    """A meta-estimator's tags, taking its kind (classifier / regressor) from ``estimator``."""
    inner = estimator.__sklearn_tags__()
    tags.estimator_type = inner.estimator_type
    tags.classifier_tags = inner.classifier_tags
    tags.regressor_tags = inner.regressor_tags
    return tags


def _halves(X, who):
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] % 2:
        raise ValueError(
            f"{who} expects paired features [f(x), f(mirror x)] of shape (n_samples, 2 * n_features) "
            f"(the output of HFlipPairs); got shape {X.shape}"
        )
    d = X.shape[1] // 2
    return X[:, :d], X[:, d:]


def _delegates(name):
    return available_if(lambda self: hasattr(self.estimator, name))


class HFlipAugmented(MetaEstimatorMixin, BaseEstimator):
    """Train on images and their mirror images; predict from the images alone.

    Takes the output of :class:`~facebench.baselines.features.HFlipPairs`
    (``[f(x), f(mirror x)]`` per row). ``fit`` stacks both halves as separate
    rows (each label twice); ``predict`` and friends use the first half only.
    Placed inside the cross-validation, folds split images, never a face from its
    mirror copy.

    Parameters
    ----------
    estimator : estimator
        Fitted on the stacked halves.
    max_rows : int, optional
        Cap on the rows the estimator is fitted on: when ``2 * n_samples`` would
        exceed it, only ``max_rows - n_samples`` images (drawn with
        ``random_state``) bring their mirror copy. Bounds the fit time of
        estimators that scale quadratically (kernel SVR). ``None``: no cap.
    random_state : int, RandomState or None
        Seeds the draw when ``max_rows`` caps the rows.
    average_mirror : bool, default=False
        Regressors only: ``predict`` returns the mean of the predictions for the
        image and for its mirror image (test-time flip). Off by default: the
        first half alone is used.

    Attributes
    ----------
    mirrored_ : ndarray of int
        Rows whose mirror copy was used.
    estimator_ : estimator
    """

    def __init__(self, estimator, max_rows=None, random_state=None, average_mirror=False):
        self.estimator = estimator
        self.max_rows = max_rows
        self.random_state = random_state
        self.average_mirror = average_mirror

    def fit(self, X, y):
        """Fit on both halves of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, 2 * n_features)
        y : ndarray of shape (n_samples,)

        Returns
        -------
        self : object
        """
        first, mirror = _halves(X, "HFlipAugmented")
        y = np.asarray(y)
        n = len(y)
        if self.max_rows is not None and (isinstance(self.max_rows, bool) or not isinstance(self.max_rows, numbers.Integral) or self.max_rows < 1):
            raise ValueError(f"max_rows must be a positive int or None; got max_rows={self.max_rows!r}")
        if self.average_mirror not in (True, False):
            raise ValueError(f"average_mirror must be True or False; got average_mirror={self.average_mirror!r}")
        if self.average_mirror and is_classifier(self.estimator):
            raise ValueError("average_mirror=True is for regressors; a classifier predicts from the image alone")
        mirrored = np.arange(n)
        if self.max_rows is not None and 2 * n > self.max_rows:
            keep = max(0, self.max_rows - n)
            mirrored = np.sort(check_random_state(self.random_state).permutation(n)[:keep])
        self.mirrored_ = mirrored
        self.estimator_ = clone(self.estimator).fit(np.vstack([first, mirror[mirrored]]), np.concatenate([y, y[mirrored]]))
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def _first(self, X):
        check_is_fitted(self)
        return _halves(X, "HFlipAugmented")[0]

    def predict(self, X):
        """Predict from the first half (the images themselves).

        Parameters
        ----------
        X : ndarray of shape (n_samples, 2 * n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            With ``average_mirror``, the mean of the predictions for both halves.
        """
        check_is_fitted(self)
        first, mirror = _halves(X, "HFlipAugmented")
        if not self.average_mirror:
            return self.estimator_.predict(first)
        return (self.estimator_.predict(first) + self.estimator_.predict(mirror)) / 2

    @_delegates("decision_function")
    def decision_function(self, X):
        """Decision function of the first half; shape (n_samples,)."""
        return self.estimator_.decision_function(self._first(X))

    @_delegates("predict_proba")
    def predict_proba(self, X):
        """Class probabilities of the first half; shape (n_samples, n_classes)."""
        return self.estimator_.predict_proba(self._first(X))

    def score(self, X, y):
        """The estimator's score on the first half."""
        return self.estimator_.score(self._first(X), y)

    def __sklearn_tags__(self):
        return _with_inner_tags(super().__sklearn_tags__(), self.estimator)


class PairedTransform(TransformerMixin, BaseEstimator):
    """Apply one transformer to both halves of paired features.

    Fitted on the first half (the images themselves), then applied to each half
    separately, so ``[f(x), f(mirror x)]`` becomes ``[t(f(x)), t(f(mirror x))]``.

    Parameters
    ----------
    transformer : transformer
    """

    def __init__(self, transformer):
        self.transformer = transformer

    def fit(self, X, y=None):
        """Fit the transformer on the first half.

        Parameters
        ----------
        X : ndarray of shape (n_samples, 2 * n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        first, _ = _halves(X, "PairedTransform")
        self.transformer_ = clone(self.transformer).fit(first)
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        """Transform each half.

        Parameters
        ----------
        X : ndarray of shape (n_samples, 2 * n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, 2 * n_output_features)
        """
        check_is_fitted(self)
        first, mirror = _halves(X, "PairedTransform")
        return np.hstack([self.transformer_.transform(first), self.transformer_.transform(mirror)])


class TunedEstimator(MetaEstimatorMixin, BaseEstimator):
    """Grid search by cross-validation on (a sample of) the training rows, then refit on all.

    ``fit(X, y)`` draws at most ``max_tune_samples`` rows of ``X`` (stratified
    by class, or by age quantile for regression), runs a ``cv``-fold grid search
    over ``param_grid`` on them, and refits the best setting on every row of
    ``X``. Nothing but the rows given to ``fit`` is ever seen, so inside a
    pipeline fitted on a training part the test part cannot leak into the choice.

    Parameters
    ----------
    estimator : estimator
    param_grid : dict or list of dict
        As for :class:`~sklearn.model_selection.GridSearchCV`.
    cv : int, default=3
        Folds (shuffled, stratified for classifiers). Fewer when a class has
        fewer rows; with under 2 rows per fold the first grid point is used untuned.
    max_tune_samples : int, default=3000
        Rows used for the search (the refit uses all).
    scoring : str, optional
        Default: accuracy for classifiers, negative MAE for regressors.
    random_state : int, RandomState or None
        Seeds the sample and the folds.
    n_jobs : int, optional
        Parallel fits of the search.

    Attributes
    ----------
    best_params_ : dict
    cv_results_ : dict or None
    tune_indices_ : ndarray
        Row indices (into the ``X`` given to ``fit``) the search saw.
    estimator_ : estimator
        The refitted best estimator.
    """

    def __init__(self, estimator, param_grid, cv=3, max_tune_samples=3000, scoring=None, random_state=None, n_jobs=None):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.max_tune_samples = max_tune_samples
        self.scoring = scoring
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Tune and fit.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)

        Returns
        -------
        self : object
        """
        if isinstance(self.cv, bool) or not isinstance(self.cv, numbers.Integral) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2; got cv={self.cv!r}")
        if isinstance(self.max_tune_samples, bool) or not isinstance(self.max_tune_samples, numbers.Integral) or self.max_tune_samples < 2:
            raise ValueError(f"max_tune_samples must be an int >= 2; got max_tune_samples={self.max_tune_samples!r}")
        X, y = validate_data(self, X, y, dtype=None)
        classifier = is_classifier(self.estimator)
        if classifier:
            check_classification_targets(y)
        rng = check_random_state(self.random_state)
        sample_seed, fold_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))
        strata = y if classifier else _quantile_bins(y, 5)

        index = np.arange(len(y))
        if len(y) > self.max_tune_samples:
            index, _ = train_test_split(index, train_size=self.max_tune_samples, stratify=strata, random_state=sample_seed)
            index = np.sort(index)
        counts = np.unique(strata[index], return_counts=True)[1]
        n_splits = min(self.cv, int(counts.min()) if classifier else len(index) // 2)
        grid = self.param_grid if isinstance(self.param_grid, list) else [self.param_grid]

        self.tune_indices_ = index
        if n_splits >= 2 and (not classifier or len(counts) > 1):
            splitter = (StratifiedKFold if classifier else KFold)(n_splits, shuffle=True, random_state=fold_seed)
            scoring = self.scoring or ("accuracy" if classifier else "neg_mean_absolute_error")
            search = GridSearchCV(clone(self.estimator), self.param_grid, scoring=scoring, cv=splitter, n_jobs=self.n_jobs, refit=False)
            search.fit(X[index], y[index])
            self.best_params_ = search.best_params_
            self.cv_results_ = search.cv_results_
        else:  # too few rows to cross-validate: first grid point
            self.best_params_ = {k: v[0] for k, v in grid[0].items()}
            self.cv_results_ = None
        self.estimator_ = clone(self.estimator).set_params(**self.best_params_).fit(X, y)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        return self

    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=None, reset=False)

    def predict(self, X):
        """Predict with the refitted best estimator; shape (n_samples,)."""
        X = self._validated(X)
        return self.estimator_.predict(X)

    @_delegates("decision_function")
    def decision_function(self, X):
        """Decision function of the refitted best estimator."""
        X = self._validated(X)
        return self.estimator_.decision_function(X)

    @_delegates("predict_proba")
    def predict_proba(self, X):
        """Class probabilities of the refitted best estimator."""
        X = self._validated(X)
        return self.estimator_.predict_proba(X)

    def score(self, X, y):
        """The refitted estimator's score."""
        X = self._validated(X)
        return self.estimator_.score(X, y)

    def __sklearn_tags__(self):
        return _with_inner_tags(super().__sklearn_tags__(), self.estimator)


def _quantile_bins(y, n_bins):
    y = np.asarray(y, dtype=float)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return np.searchsorted(edges, y, side="right")


# ---------------------------------------------------------------------------- registry

#: Feature extractors by name (64x64 grayscale in mind).
FEATURES = {
    "hog": lambda: HOGFeatures(),
    "hog6": lambda: HOGFeatures(pixels_per_cell=(6, 6)),
    "lbp": lambda: LBPFeatures(),
    "pixels": lambda: PixelFeatures(size=32),
    "tiny": lambda: PixelFeatures(size=4),
    "color": lambda: ColorFeatures(),
}
#: Features that need RGB input; a model using one takes RGB stacks (its other
#: features then see them through OnGray).
COLOR_FEATURES = frozenset({"color"})

#: Tuning grids (documented, small); keys are the final estimator's parameters.
GRIDS = {
    "svm": {"C": [1.0, 3.0, 10.0]},
    "linsvm": {"C": [1e-5, 1e-4, 1e-3, 1e-2]},
    "svr": {"C": [10.0, 30.0, 100.0]},
}
#: Alphas RidgeCV chooses from (efficient leave-one-out CV on the training rows).
RIDGE_ALPHAS = tuple(np.logspace(0, 5, 11))
#: Components kept by the PCA step of the RBF models.
PCA_COMPONENTS = 256
#: Heads trained with horizontal-flip augmentation.
FLIP_HEADS = frozenset({"svm", "svr"})
#: Flip heads whose prediction is the mean over the face and its mirror image. On the 5k
#: subset (3 splits) this lowered SVR's MAE on every split (-0.04 to -0.08 years) but
#: lowered SVC's accuracy on average (-0.27 points), so only SVR does it.
MIRROR_AVERAGE_HEADS = frozenset({"svr"})
#: Rows (images + mirror copies) an RBF head is fitted on at most; None: no cap. Kernel SVR
#: fits grow about quadratically with rows and nearly every row is a support vector, so
#: its cap keeps the full UTKFace fit within minutes (19k images + 11k mirrors).
FLIP_MAX_ROWS = {"svm": None, "svr": 30_000}

_HEAD_TASKS = {"svm": ("gender",), "linsvm": ("gender",), "ridge": ("age",), "svr": ("age",), "dummy": ("age", "gender")}

#: name -> (feature names, head). A new combination is one line here.
MODELS = {
    "dummy": (("tiny",), "dummy"),
    "hog+svm": (("hog",), "svm"),
    "lbp+svm": (("lbp",), "svm"),
    "hog+lbp+svm": (("hog", "lbp"), "svm"),
    "hog+lbp+color+svm": (("hog", "lbp", "color"), "svm"),
    "pixels+pca+svm": (("pixels",), "svm"),
    "hog+linsvm": (("hog",), "linsvm"),
    "hog+lbp+linsvm": (("hog", "lbp"), "linsvm"),
    "hog+ridge": (("hog",), "ridge"),
    "lbp+ridge": (("lbp",), "ridge"),
    "hog+lbp+ridge": (("hog", "lbp"), "ridge"),
    "hog+lbp+svr": (("hog", "lbp"), "svr"),
    "hog6+lbp+svr": (("hog6", "lbp"), "svr"),
    "hog6+lbp+color+svr": (("hog6", "lbp", "color"), "svr"),
}

#: name -> the tasks the model supports.
MODEL_TASKS = {name: _HEAD_TASKS[head] for name, (_, head) in MODELS.items()}


def list_models(task):
    """Registry names valid for a task.

    Parameters
    ----------
    task : {"age", "gender"}

    Returns
    -------
    names : list of str
    """
    _check_task(task)
    return [name for name, tasks in MODEL_TASKS.items() if task in tasks]


def _check_task(task):
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got task={task!r}")


def input_color(name):
    """The image stack a registry model takes: ``"rgb"``, or ``None`` for the run's choice.

    Models with colour features (``COLOR_FEATURES``) need RGB stacks; every other
    model works on whatever the run decodes (64x64 grayscale by default).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model name={name!r}; known models: {', '.join(MODELS)}")
    return "rgb" if COLOR_FEATURES & set(MODELS[name][0]) else None


def _features(names):
    if len(names) == 1:
        return FEATURES[names[0]]()
    if COLOR_FEATURES & set(names):  # one RGB stack in: the grayscale features see it in gray
        return FeatureUnion([(name, FEATURES[name]() if name in COLOR_FEATURES else OnGray(FEATURES[name]())) for name in names])
    return FeatureUnion([(name, FEATURES[name]()) for name in names])


def _head(head, task, random_state, n_jobs):
    """Steps after the features, as (name, estimator) pairs."""
    if head == "dummy":
        return [("model", DummyClassifier(strategy="prior") if task == "gender" else DummyRegressor(strategy="median"))]
    if head == "ridge":
        return [("scale", StandardScaler()), ("model", RidgeCV(alphas=RIDGE_ALPHAS))]
    if head == "linsvm":
        estimator = LinearSVC(dual=False, max_iter=5000, random_state=random_state)
        return [("scale", StandardScaler()), ("model", _tuned(estimator, GRIDS[head], random_state, n_jobs))]
    cache = svm_cache_mb()
    estimator = SVC(kernel="rbf", gamma="scale", cache_size=cache) if head == "svm" else SVR(kernel="rbf", gamma="scale", epsilon=1.0, cache_size=cache)
    reduce = Pipeline([("scale", StandardScaler()), ("pca", CappedPCA(PCA_COMPONENTS, random_state=random_state))])
    if head in FLIP_HEADS:
        augmented = HFlipAugmented(estimator, max_rows=FLIP_MAX_ROWS[head], random_state=random_state,
                                   average_mirror=head in MIRROR_AVERAGE_HEADS)
        return [("reduce", PairedTransform(reduce)), ("model", _tuned(augmented, GRIDS[head], random_state, n_jobs, "estimator__"))]
    return [*reduce.steps, ("model", _tuned(estimator, GRIDS[head], random_state, n_jobs))]


def svm_cache_mb():
    """Kernel cache (MB) of the RBF SVC / SVR fits: a sixth of the machine's memory, at most 4,096.

    libsvm recomputes every kernel row that does not fit in its cache, and on the
    full UTKFace that dominates the fit: on 30,000 rows (faces + mirror images) an
    SVR took 465 s with scikit-learn's default-sized 1,000 MB cache and 81 s with
    4,000 MB; an SVC on 37,888 rows 358 s and 97 s (benchmarks/RESULTS.md). The
    cache is allocated as it fills, so small fits use little; two fits run at once,
    hence a sixth of the memory. ``FACEBENCH_SVM_CACHE_MB`` overrides it.
    """
    import os

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
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):  # not a POSIX system
        total_mb = 8192
    return int(max(200, min(4096, total_mb // 6)))


def _tuned(estimator, grid, random_state, n_jobs, prefix=""):
    grid = {prefix + key: values for key, values in grid.items()}
    return TunedEstimator(estimator, grid, cv=3, max_tune_samples=3000, random_state=random_state, n_jobs=n_jobs)


def make_model(name, task, random_state=None, n_jobs=None):
    """A fresh, unfitted model from the registry.

    Parameters
    ----------
    name : str
        A key of ``MODELS`` (``list_models(task)`` gives the valid ones).
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
    _check_task(task)
    if name not in MODELS:
        raise ValueError(f"unknown model name={name!r}; known models: {', '.join(MODELS)}")
    if task not in MODEL_TASKS[name]:
        raise ValueError(f"model {name!r} does not do task={task!r}; models for {task!r}: {', '.join(list_models(task))}")
    if random_state is not None and not isinstance(random_state, (numbers.Integral, np.random.RandomState)):
        raise ValueError(f"random_state must be an int, a RandomState or None; got random_state={random_state!r}")
    feature_names, head = MODELS[name]
    features = _features(feature_names)
    if head in FLIP_HEADS:
        features = HFlipPairs(features)
    return Pipeline([("features", features), *_head(head, task, random_state, n_jobs)])


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
        A model from :func:`make_model` (on images) or its tail ``model[1:]`` (on
        the features step's output).
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
