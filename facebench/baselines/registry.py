"""The classical models: a registry of feature + estimator pipelines per task.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline` on an image
stack ``(n_images, height, width)`` uint8 (64x64 grayscale by default) whose
first step, ``"features"``, is a stateless feature transformer. So a caller can
compute ``F = feature_step(name).transform(X)`` once per image set and fit or
predict ``make_head(name, task)`` on ``F``: the result is the same as
``make_model(name, task)`` on ``X``.

Hyperparameters are chosen inside ``fit`` by cross-validation on the training
rows only (:class:`~facebench.baselines.estimators.TunedEstimator`: grid search
on at most 3,000 training rows, then a refit of the best setting on all of them),
so fitting a model on the training part of a split is all a caller does.

Models (``MODELS``; a new combination is one line there, or one call of
:func:`register_model` from outside)::

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
    dlib128+svm       gender  dlib's descriptor 128       scaler -> SVC rbf, C=1          [160 px RGB input]
    dlib128+logreg    gender  dlib's descriptor           scaler -> logistic regression, C=0.1
    dlib128+svr       age     dlib's descriptor           scaler -> SVR rbf on sqrt(age), C=1, epsilon=0.1
    dlib128+ridge     age     dlib's descriptor           scaler -> RidgeCV

The ``dlib128`` models are features learned elsewhere (``facebench.pretrained``, the
optional extra ``pip install 'facebench[pretrained]'``; :func:`check_available` says what
to install): their features step embeds each face (cached on disk), they train without
mirror images or PCA, and their heads' settings are fixed (``PRETRAINED_GRIDS``).

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
their ``"features"`` step is :class:`~facebench.baselines.transformers.HFlipPairs`
(features of each image and of its mirror image side by side), and
:class:`~facebench.baselines.estimators.HFlipAugmented` fits on both halves as
separate rows. The SVM predicts from the first half only; the SVR averages its
predictions for the face and its mirror image (``MIRROR_AVERAGE_HEADS``: test-time
flip, measured to help SVR and not SVC). The features-once contract above still
holds. ``uses_flip(model)`` tells whether a model is one of them. SVR fits on at
most 30,000 rows (``FLIP_MAX_ROWS``): past 15,000 training images only a seeded
subset brings its mirror copy.

Building a model from its name (:func:`~facebench.baselines.building.make_model`) is
:mod:`facebench.baselines.building`. Fitted models are saved with ``skops.io``; ``TRUSTED_TYPES`` lists every type
their files may hold, so loading one never runs code from it. Models of the user's
own: :func:`facebench.baselines.register_model`.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.pipeline import Pipeline

from facebench.baselines.bif import BIFFeatures
from facebench.baselines.transformers import ColorFeatures, HOGFeatures, LBPFeatures, PixelFeatures
from facebench.vocab import AGE_MAX, AGE_MIN, TASKS

__all__ = [
    "AGE_RANGE",
    "FEATURES",
    "FLIP_HEADS",
    "GRIDS",
    "HEADS",
    "MODELS",
    "MODEL_TASKS",
    "TASKS",
    "TRUSTED_TYPES",
    "describe",
    "check_available",
    "expected_fit_cost",
    "family",
    "input_color",
    "input_size",
    "list_all",
    "list_models",
]

#: Valid ages (years); age predictions are clipped to it.
AGE_RANGE = (float(AGE_MIN), float(AGE_MAX))

#: Feature extractors by name (64x64 grayscale in mind).
FEATURES = {
    "hog": lambda: HOGFeatures(),
    "hog6": lambda: HOGFeatures(pixels_per_cell=(6, 6)),
    "lbp": lambda: LBPFeatures(),
    "pixels": lambda: PixelFeatures(size=32),
    "tiny": lambda: PixelFeatures(size=4),
    "color": lambda: ColorFeatures(),
    "bif": lambda: BIFFeatures(),
    "dlib128": lambda: _pretrained().DlibDescriptor(),
}
#: Features learned elsewhere (facebench.pretrained, an optional extra) -> the square side
#: their face stacks are decoded at, whatever the run's features.image_size. Their models
#: train without mirror images (each would be a second embedding, ~13 ms a face) and without PCA.
PRETRAINED_FEATURES = {"dlib128": 160}
#: Features that need RGB input; a model using one takes RGB stacks (its other
#: features then see them through OnGray).
COLOR_FEATURES = frozenset({"color", "dlib128"})
_FEATURE_LABELS = {"hog": "HOG", "hog6": "HOG 6x6", "lbp": "LBP", "pixels": "pixels 32x32",
                   "tiny": "pixels 4x4", "color": "colour", "bif": "BIF (Gabor bank)",
                   "dlib128": "dlib's 128-d face descriptor"}

#: Tuning grids (documented, small); keys are the final estimator's parameters.
GRIDS = {
    "svm": {"C": [1.0, 3.0, 10.0]},
    "linsvm": {"C": [1e-5, 1e-4, 1e-3, 1e-2]},
    "svr": {"C": [10.0, 30.0, 100.0]},
    "logreg": {"C": [0.1, 1.0, 10.0]},
}
#: The heads on a pretrained network's features: one setting each, chosen once by 3-fold
#: cross-validation on the training part of split 0 of the 5k subset (no test face; see
#: benchmarks/RESULTS.md), so a fit is one fit (~1 s on 4k faces). The SVR predicts the
#: square root of the age (3-fold MAE 6.27 against 6.40 for the best SVR on the age itself).
PRETRAINED_GRIDS = {
    "svm": {"C": [1.0]},
    "svr": {"C": [1.0], "epsilon": [0.1]},
    "logreg": {"C": [0.1]},
}
#: What the heads are on a pretrained network's features (for ``describe``).
PRETRAINED_HEADS = {"svm": "scaler -> RBF SVC (C=1)", "logreg": "scaler -> logistic regression (C=0.1)",
                    "svr": "scaler -> RBF SVR on the square root of the age (C=1, epsilon=0.1)",
                    "ridge": "scaler -> RidgeCV"}
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
#: Heads with a kernel: fit time grows about quadratically with the training rows.
KERNEL_HEADS = frozenset({"svm", "svr"})

#: The estimators after the features: head -> (tasks, one-line description).
HEADS = {
    "svm": (("gender",), f"scaler -> PCA {PCA_COMPONENTS} -> RBF SVC, flip-augmented"),
    "linsvm": (("gender",), "scaler -> LinearSVC"),
    "ridge": (("age",), "scaler -> RidgeCV"),
    "logreg": (("gender",), "scaler -> logistic regression"),
    "svr": (("age",), f"scaler -> PCA {PCA_COMPONENTS} -> RBF SVR, flip-augmented, mirror-averaged"),
    "dummy": (("age", "gender"), "majority class / median age, ignoring the image (the floor to beat)"),
}

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
    # learned elsewhere (pip install 'facebench[pretrained]'): RBF heads on the descriptor itself
    "dlib128+svm": (("dlib128",), "svm"),
    "dlib128+logreg": (("dlib128",), "logreg"),
    "dlib128+svr": (("dlib128",), "svr"),
    "dlib128+ridge": (("dlib128",), "ridge"),
}

#: name -> the tasks the model supports (built-in and registered models).
MODEL_TASKS = {name: HEADS[head][0] for name, (_, head) in MODELS.items()}

# Models added by facebench.baselines.custom.register_model:
# name -> {"features", "head", "factory", "color", "summary"}.
_REGISTERED: dict[str, dict] = {}

#: Every type a facebench classical model file may hold, as ``skops.io`` names them:
#: facebench's transformers and meta-estimators and the scikit-learn and NumPy
#: types they are made of. Loading a file that holds any other type is refused.
TRUSTED_TYPES = tuple(f"{module}.{name}" for module, names in (
    ("builtins", ("dict", "list", "str", "tuple")),
    ("facebench.baselines.bif", ("BIFFeatures",)),
    ("facebench.baselines.estimators", ("CappedPCA", "HFlipAugmented", "PairedTransform", "TunedEstimator")),
    ("facebench.baselines.transformers",
     ("ColorFeatures", "HFlipPairs", "HOGFeatures", "LBPFeatures", "OnGray", "PixelFeatures")),
    ("facebench.pretrained.embeddings", ("DlibDescriptor",)),
    ("numpy", ("bool_", "float32", "float64", "int64", "ndarray")),
    ("numpy.ma", ("MaskedArray",)),  # GridSearchCV's cv_results_
    ("sklearn.decomposition._pca", ("PCA",)),
    ("sklearn.dummy", ("DummyClassifier", "DummyRegressor")),
    ("sklearn.linear_model._logistic", ("LogisticRegression",)),
    ("sklearn.linear_model._ridge", ("RidgeCV",)),
    ("sklearn.pipeline", ("FeatureUnion", "Pipeline")),
    ("sklearn.preprocessing._data", ("StandardScaler",)),
    ("sklearn.svm._classes", ("LinearSVC", "SVC", "SVR")),
) for name in names)


# ---------------------------------------------------------------------------- queries


def list_models(task):
    """Registry names valid for a task (built-in, then registered, in order).

    Parameters
    ----------
    task : {"age", "gender"}

    Returns
    -------
    names : list of str
    """
    _check_task(task)
    return [name for name, tasks in MODEL_TASKS.items() if task in tasks]


def list_all():
    """Every registry name, built-in first, then those added by :func:`register_model`."""
    return list(MODEL_TASKS)


def input_color(name):
    """The image stack a registry model takes: ``"rgb"``, or ``None`` for the run's choice.

    Models with colour features (``COLOR_FEATURES``) need RGB stacks; every other
    model works on whatever the run decodes (64x64 grayscale by default).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    _check_name(name)
    if _is_factory(name):
        return _REGISTERED[name]["color"]
    return "rgb" if COLOR_FEATURES & set(MODELS[name][0]) else None


def input_size(name):
    """The square side a registry model's faces are decoded at, or ``None`` for the run's ``features.image_size``.

    Models on features learned elsewhere (``PRETRAINED_FEATURES``) see faces at the size
    their network needs (160 px for dlib's descriptor, which cuts a 150-pixel chip).
    """
    _check_name(name)
    sizes = [PRETRAINED_FEATURES[f] for f in _pretrained_names(_feature_names(name))]
    return max(sizes) if sizes else None


def family(name):
    """``"learned elsewhere"`` for a model on a pretrained network's features, else ``"hand-crafted"``."""
    _check_name(name)
    return "learned elsewhere" if _pretrained_names(_feature_names(name)) else "hand-crafted"


def check_available(name):
    """Raise :class:`~facebench.errors.UserError` (one line: what to install) when a model's extra is missing."""
    _check_name(name)
    if _pretrained_names(_feature_names(name)):
        _pretrained().require(f"model {name!r}")


def _feature_names(name):
    return MODELS[name][0] if name in MODELS else ()


def _pretrained_names(names):
    return [f for f in names if f in PRETRAINED_FEATURES]


def _pretrained():
    """facebench.pretrained, imported when a model uses it (its own imports of dlib are lazier still)."""
    import facebench.pretrained

    return facebench.pretrained


def describe(name):
    """What a registry model is, as the models table and ``facebench models`` show it.

    Returns
    -------
    info : dict
        ``name``, ``kind`` ("classical"), ``tasks`` (tuple), ``family`` ("trivial"
        for ``dummy``, else "hand-crafted"), ``features`` (e.g. "hog+lbp+color"),
        ``estimator`` (the head, e.g. "svm", "ridge"; "custom" for a factory
        model), ``color`` ("rgb" or None) and ``summary`` (one short sentence).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    _check_name(name)
    entry = _REGISTERED.get(name)
    if entry is not None and entry["factory"] is not None:
        features, head, summary = entry["features"], "custom", entry["summary"]
    else:
        names, head = MODELS[name]
        features = "+".join(names)
        heads = PRETRAINED_HEADS if _pretrained_names(names) else {h: d for h, (_, d) in HEADS.items()}
        summary = (entry or {}).get("summary") or (
            heads[head] if head == "dummy" else " + ".join(_FEATURE_LABELS.get(f, f) for f in names) + " -> " + heads[head])
    return {"name": name, "kind": "classical", "tasks": tuple(MODEL_TASKS[name]),
            "family": "trivial" if head == "dummy" else family(name), "features": features,
            "estimator": head, "color": input_color(name), "summary": summary}


def expected_fit_cost(name, n_train):
    """Rough fit seconds of a model on ``n_train`` images (2-core machine), for scheduling only.

    Kernel heads grow about quadratically with the training rows (~120 s at 19k faces
    with flip augmentation), ridge and the linear SVM about linearly (<= ~70 s there):
    benchmarks/RESULTS.md, ``standard`` at full size.
    """
    _check_name(name)
    n = float(n_train)
    head = MODELS[name][1] if name in MODELS else None
    return 3.3e-7 * n * n if head in KERNEL_HEADS else 3.5e-3 * n


def _is_factory(name):
    return _REGISTERED.get(name, {}).get("factory") is not None


def _from_factory(name, task, random_state, n_jobs):
    model = _REGISTERED[name]["factory"](task, random_state, n_jobs)
    if not isinstance(model, Pipeline) or len(model.steps) < 2 or model.steps[0][0] != "features":
        raise ValueError(f"model {name!r}: its factory must return a Pipeline of 2+ steps whose first is "
                         f"named 'features'; got {type(model).__name__}")
    return model


# ---------------------------------------------------------------------------- checks and outputs


def _check_task(task):
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got task={task!r}")


def _check_name(name):
    if name not in MODEL_TASKS:
        raise ValueError(f"unknown model name={name!r}; known models: {', '.join(MODEL_TASKS)}")


def _check_model_task(name, task):
    _check_task(task)
    if task not in MODEL_TASKS[name]:
        raise ValueError(f"model {name!r} does not do task={task!r}; models for {task!r}: {', '.join(list_models(task))}")


def _check_build(name, task, random_state):
    _check_name(name)
    _check_model_task(name, task)
    if random_state is not None and not isinstance(random_state, (numbers.Integral, np.random.RandomState)):
        raise ValueError(f"random_state must be an int, a RandomState or None; got random_state={random_state!r}")
