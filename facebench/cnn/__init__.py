"""The CNNs: Keras builders (``seed``, the study's model; ``default``, a fast CPU
design), their parameters and the one checker of them (:func:`resolve_params`,
:func:`describe`), ``tf.data`` training with early stopping, prediction, saving and loading.
:func:`register_cnn` adds a CNN of the user's own; :func:`cnn_names` lists them all.

TensorFlow is imported on first use, not by ``import facebench.cnn``.

>>> from facebench import cnn
>>> fitted = cnn.fit("default", train_images, train_age, train_gender, seed=0)  # doctest: +SKIP
>>> fitted.predict(test_images)["age"]                                          # doctest: +SKIP
"""

from facebench.cnn.custom import add_user_cnns, register_cnn, user_cnns
from facebench.cnn.inputs import augment_batch, make_dataset, split_validation
from facebench.cnn.models import build_default, build_model, build_seed
from facebench.cnn.params import (
    MODEL_NAMES,
    ParamError,
    builder_keys,
    cnn_names,
    default_params,
    describe,
    resolve_params,
)
from facebench.cnn.train import FittedCNN, fit, load

__all__ = [
    "MODEL_NAMES",
    "FittedCNN",
    "ParamError",
    "add_user_cnns",
    "augment_batch",
    "build_default",
    "build_model",
    "build_seed",
    "builder_keys",
    "cnn_names",
    "default_params",
    "describe",
    "fit",
    "load",
    "make_dataset",
    "register_cnn",
    "resolve_params",
    "split_validation",
    "user_cnns",
]
