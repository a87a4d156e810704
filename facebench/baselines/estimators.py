"""The meta-estimators of the classical models: capped PCA, flip augmentation, tuning.

:class:`CappedPCA` keeps at most ``n_components`` (fewer on a tiny stack);
:class:`PairedTransform` and :class:`HFlipAugmented` handle the paired features
``[f(x), f(mirror x)]`` of :class:`~facebench.baselines.transformers.HFlipPairs`
(fit on both halves, predict from the first); :class:`TunedEstimator` chooses
hyperparameters by cross-validation on the training rows only, then refits on all.
Each follows scikit-learn's estimator conventions, holds only plain attributes and
so round-trips through ``skops.io``.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, TransformerMixin, clone, is_classifier
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, StratifiedKFold, train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["CappedPCA", "HFlipAugmented", "PairedTransform", "TunedEstimator"]

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
    iterated_power : int or "auto", default="auto"
        Power iterations of the randomized SVD (scikit-learn's ``"auto"``: 7 when
        fewer than a tenth of the dimensions are kept, else 4). Fewer iterations
        cost less and approximate the trailing components more loosely.
    """

    def __init__(self, n_components=256, whiten=False, random_state=None, iterated_power="auto"):
        self.n_components = n_components
        self.whiten = whiten
        self.random_state = random_state
        self.iterated_power = iterated_power

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
        self.pca_ = PCA(k, whiten=self.whiten, svd_solver=solver, random_state=self.random_state,
                        iterated_power=self.iterated_power).fit(X)
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

    Takes the output of :class:`~facebench.baselines.transformers.HFlipPairs`
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

    def fit_transform(self, X, y=None):
        """:meth:`fit`, then :meth:`transform`, without transforming the first half twice.

        The first half's output is the transformer's own ``fit_transform``: for the
        scaler and PCA of the registry's heads the same numbers as ``fit(first).transform(first)``.
        """
        first, mirror = _halves(X, "PairedTransform")
        self.transformer_ = clone(self.transformer)
        first_out = self.transformer_.fit_transform(first)
        self.n_features_in_ = np.asarray(X).shape[1]
        return np.hstack([first_out, self.transformer_.transform(mirror)])

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
        """Tune on at most ``max_tune_samples`` rows of ``X`` ``(n_samples, n_features)`` and ``y``
        ``(n_samples,)``, then refit the best setting on all of them; returns ``self``."""
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
        if len(ParameterGrid(self.param_grid)) <= 1:  # nothing to choose (e.g. a variant fixed it)
            self.best_params_ = dict(next(iter(ParameterGrid(self.param_grid))))
            self.cv_results_ = None
        elif n_splits >= 2 and (not classifier or len(counts) > 1):
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
