"""Hand-crafted features (HOG, LBP, pixels) and the classical models built on them.

Features are pure functions on image stacks (:func:`hog_features`,
:func:`lbp_histograms`, :func:`pixel_features`, :func:`lbp_codes`) wrapped by
stateless scikit-learn transformers (:class:`HOGFeatures`, :class:`LBPFeatures`,
:class:`PixelFeatures`; :class:`ColorFeatures` on RGB stacks). :func:`make_model` builds the registry's pipelines
(``list_models(task)``, ``MODEL_TASKS``) and :func:`predict_outputs` turns a
fitted one into per-image age or P(female) / gender predictions.
"""

from facebench.baselines.features import (
    ColorFeatures,
    HFlipPairs,
    HOGFeatures,
    LBPFeatures,
    OnGray,
    PixelFeatures,
    color_features,
    hog_features,
    pixel_features,
    transform_in_threads,
)
from facebench.baselines.lbp import lbp_codes, lbp_histograms
from facebench.baselines.models import (
    MODEL_TASKS,
    MODELS,
    HFlipAugmented,
    TunedEstimator,
    input_color,
    list_models,
    make_model,
    predict_outputs,
    uses_flip,
)

__all__ = [
    "MODELS",
    "MODEL_TASKS",
    "ColorFeatures",
    "HFlipAugmented",
    "HFlipPairs",
    "HOGFeatures",
    "LBPFeatures",
    "OnGray",
    "PixelFeatures",
    "TunedEstimator",
    "color_features",
    "hog_features",
    "input_color",
    "lbp_codes",
    "lbp_histograms",
    "list_models",
    "make_model",
    "pixel_features",
    "predict_outputs",
    "transform_in_threads",
    "uses_flip",
]
