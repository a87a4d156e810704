"""Hand-crafted features (HOG, LBP, pixels) and the classical models built on them.

Features are pure functions on image stacks (:func:`hog_features`,
:func:`lbp_histograms`, :func:`pixel_features`, :func:`lbp_codes`) wrapped by
stateless scikit-learn transformers (:class:`HOGFeatures`, :class:`LBPFeatures`,
:class:`PixelFeatures`; :class:`ColorFeatures` on RGB stacks). The meta-estimators
(capped PCA, flip augmentation, tuning) live in :mod:`~facebench.baselines.estimators`;
:mod:`~facebench.baselines.registry` names the models: :func:`make_model` builds one
(:func:`feature_step` and :func:`make_head` its two parts, :func:`describe` says what it
is), and :func:`predict_outputs` turns a fitted one into per-image age or P(female) /
gender predictions. :func:`register_model` adds a model of the user's own.
"""

from facebench.baselines.features import color_features, hog_features, pixel_features, transform_in_threads
from facebench.baselines.transformers import ColorFeatures, HFlipPairs, HOGFeatures, LBPFeatures, OnGray, PixelFeatures
from facebench.baselines.custom import add_user_models, register_model, user_models
from facebench.baselines.estimators import CappedPCA, HFlipAugmented, PairedTransform, TunedEstimator
from facebench.baselines.lbp import lbp_codes, lbp_histograms
from facebench.baselines.building import feature_step, make_head, make_model, predict_outputs, uses_flip
from facebench.baselines.registry import (
    MODEL_TASKS,
    MODELS,
    TRUSTED_TYPES,
    describe,
    expected_fit_cost,
    input_color,
    list_all,
    list_models,
)

__all__ = [
    "MODELS",
    "MODEL_TASKS",
    "TRUSTED_TYPES",
    "CappedPCA",
    "ColorFeatures",
    "HFlipAugmented",
    "HFlipPairs",
    "HOGFeatures",
    "LBPFeatures",
    "OnGray",
    "PairedTransform",
    "PixelFeatures",
    "TunedEstimator",
    "add_user_models",
    "color_features",
    "describe",
    "expected_fit_cost",
    "feature_step",
    "hog_features",
    "input_color",
    "lbp_codes",
    "lbp_histograms",
    "list_all",
    "list_models",
    "make_head",
    "make_model",
    "pixel_features",
    "predict_outputs",
    "register_model",
    "transform_in_threads",
    "user_models",
    "uses_flip",
]
