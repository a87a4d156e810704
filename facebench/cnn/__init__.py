"""The CNNs: Keras builders (``seed``, the study's model; ``default``, a fast CPU
design), ``tf.data`` training with early stopping, prediction, saving and loading.

TensorFlow is imported on first use, not by ``import facebench.cnn``.

>>> from facebench import cnn
>>> fitted = cnn.fit("default", train_images, train_age, train_gender, seed=0)  # doctest: +SKIP
>>> fitted.predict(test_images)["age"]                                          # doctest: +SKIP
"""

from facebench.cnn.models import MODEL_NAMES, build_default, build_model, build_seed, default_params
from facebench.cnn.train import FittedCNN, augment_batch, fit, load, make_dataset, resolve_params, split_validation

__all__ = [
    "MODEL_NAMES",
    "FittedCNN",
    "augment_batch",
    "build_default",
    "build_model",
    "build_seed",
    "default_params",
    "fit",
    "load",
    "make_dataset",
    "resolve_params",
    "split_validation",
]
