"""How a CNN is compiled: its losses and their weights, the optimizer and its schedule, and XLA.

:func:`compile_args` gives what ``model.compile`` takes for a resolved parameter set;
:func:`facebench.cnn.fit` compiles with it, and so does ``benchmarks/cnn_profile.py``.
"""

from __future__ import annotations

from facebench.cnn.models import keras_module, tf_module

__all__ = ["XLA_MIN_STEPS", "age_distribution_loss", "age_loss", "compile_args", "cpu_with_onednn", "jit_compile",
           "loss_weights", "make_optimizer"]


def compile_args(p, output_names, steps_per_epoch) -> dict:
    """``model.compile``'s keyword arguments for the resolved parameters ``p`` (a fresh optimizer each call)."""
    losses, weights = {"age": age_loss(p), "gender": "binary_crossentropy"}, loss_weights(p)
    if "age_dist" in output_names:
        losses["age_dist"] = age_distribution_loss(p.get("age_sigma", 2.0))
        weights["age_dist"] = float(p.get("age_kl_weight", 0.0))
    return {"optimizer": make_optimizer(p, steps_per_epoch), "loss": losses, "loss_weights": weights,
            "metrics": {"age": ["mae"], "gender": ["accuracy"]},
            "jit_compile": jit_compile(p["jit_compile"], p["epochs"] * steps_per_epoch)}


def age_distribution_loss(sigma):
    """KL divergence from a Gaussian of ``sigma`` years around each age to the predicted distribution.

    The label distribution of DLDL-v2: ``q_k`` proportional to ``exp(-(k - age)^2 / (2 sigma^2))``
    over the ages ``k = 0 .. 116``; the loss is ``sum_k q_k (log q_k - log p_k)``. Written
    here because Keras' own KL loss needs the target distribution as data, and the
    targets are ages.
    """
    keras = keras_module()
    ops = keras.ops

    def age_distribution_kl(y_true, y_pred):
        bins = ops.arange(y_pred.shape[-1], dtype="float32")
        age = ops.reshape(ops.cast(y_true, "float32"), (-1, 1))
        q = ops.softmax(-ops.square(bins - age) / (2.0 * sigma * sigma), axis=-1)
        p = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1.0)
        return ops.sum(q * (ops.log(ops.clip(q, 1e-7, 1.0)) - ops.log(p)), axis=-1)

    return age_distribution_kl


#: Below this many training steps, "auto" trains without XLA: compiling costs about 10 s per
#: model on 2 cores (a first epoch of 18-22 s with XLA, 8-13 s without, on 100 faces), more
#: than a short fit can win back.
XLA_MIN_STEPS = 200


def jit_compile(setting, steps):
    """``jit_compile`` as Keras takes it: ``"auto"`` is off for short fits and on a CPU whose
    TensorFlow kernels run through oneDNN, Keras' choice otherwise.

    XLA compiles its own CPU kernels and leaves oneDNN's aside: on an AMD EPYC (AVX2) the
    default CNN's step took 4.4-4.7 CPU-ms an image with XLA against 3.6-3.9 without it, once
    oneDNN was on (benchmarks/RESULTS.md, "oneDNN"); on a GPU Keras decides.
    """
    if setting == "auto" and (steps < XLA_MIN_STEPS or cpu_with_onednn()):
        return False
    return setting


def cpu_with_onednn() -> bool:
    from facebench.tf_runtime import onednn_enabled

    return onednn_enabled() and not tf_module().config.list_physical_devices("GPU")


def make_optimizer(p, steps_per_epoch):
    keras = keras_module()
    ema = {"use_ema": True, "ema_momentum": float(p["ema"])} if p["ema"] else {}
    lr = p["learning_rate"]
    if p["lr_schedule"] == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            p["learning_rate"], decay_steps=max(1, p["epochs"] * steps_per_epoch), alpha=0.01
        )
    name = p["optimizer"]
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, weight_decay=p["weight_decay"] or None, **ema)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, weight_decay=p["weight_decay"] or 1e-4, **ema)
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate=lr, momentum=0.9, nesterov=True, weight_decay=p["weight_decay"] or None, **ema
        )
    return keras.optimizers.RMSprop(learning_rate=lr, weight_decay=p["weight_decay"] or None, **ema)


def age_loss(p):
    keras = keras_module()
    scale = p["age_std"] if p["standardize_age"] else 1.0
    if p["age_loss"] == "huber":
        return keras.losses.Huber(delta=p["huber_delta"] * scale)
    return p["age_loss"]


def loss_weights(p):
    """Loss weights as compiled: with ``standardize_age`` the age weight applies to
    the age loss in standard deviations (MAE/Huber in years / std, MSE / std**2)."""
    w_age, w_gender = float(p["loss_weights"]["age"]), float(p["loss_weights"]["gender"])
    if p["standardize_age"]:
        w_age /= p["age_std"] ** (2 if p["age_loss"] == "mse" else 1)
    return {"age": w_age, "gender": w_gender}
