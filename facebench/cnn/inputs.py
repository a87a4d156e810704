"""The CNNs' input: the seeded validation slice, the ``tf.data`` pipeline, augmentation.

Batches are gathered from the in-memory uint8 array, augmented on the fly (one
stateless seed per batch, so a seed gives the same batches every time) and
prefetched: no re-decoding and no Python loop per batch.
"""

from __future__ import annotations

import math

import numpy as np

from facebench.cnn.models import tf_module

__all__ = ["augment_batch", "make_dataset", "split_validation"]


def split_validation(n, fraction, seed):
    """Split ``range(n)`` into (train, validation) rows, seeded, both sorted.

    ``floor(n * fraction)`` rows (at least one when ``fraction > 0``) go to
    validation, chosen at random: unlike Keras' ``validation_split``, which takes
    the *last* rows and so a biased slice when the rows are sorted (UTKFace
    names sort by age).
    """
    n_val = int(n * fraction)
    if fraction > 0:
        n_val = max(n_val, 1)
    if fraction > 0 and n - n_val < 1:
        raise ValueError(
            f"validation_split={fraction} leaves no training image out of {n}; pass more images"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def make_dataset(images, age, gender, params, *, seed=0, training=True):
    """A ``tf.data.Dataset`` of ``(float32 images, {"age", "gender"})`` batches.

    With ``params["age_head"] == "distribution"`` the targets also hold ``"age_dist"``:
    the age in years again, for the loss on the head's distribution.

    Only the rows passed in are captured. ``training=True``: reshuffled every
    epoch, augmented (``params["augment"]``) and repeated forever (``fit``
    passes ``steps_per_epoch``); otherwise in order, once, unaugmented. Batches
    are gathered from the in-memory uint8 array and prefetched.
    """
    tf = tf_module()
    x = _add_channel(np.asarray(images))
    n = len(x)
    xt = tf.constant(x)
    yt_age = tf.constant(np.asarray(age, dtype=np.float32))
    yt_gender = tf.constant(np.asarray(gender, dtype=np.float32))
    augment = params.get("augment") if training else None
    batch_size = int(params["batch_size"])
    with_dist = params.get("age_head") == "distribution"

    ds = tf.data.Dataset.range(n)
    if training:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training:
        ds = ds.repeat()
        # one stateless seed pair per batch: repeatable, different every batch and epoch
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds))
    else:
        ds = ds.map(lambda i: (i, tf.zeros([2], tf.int64)))

    def gather(idx, batch_seed):
        xb = tf.cast(tf.gather(xt, idx), tf.float32)
        if augment:
            xb = augment_batch(xb, batch_seed, augment)
        targets = {"age": tf.gather(yt_age, idx), "gender": tf.gather(yt_gender, idx)}
        if with_dist:
            targets["age_dist"] = targets["age"]
        return xb, targets

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def augment_batch(images, seed, augment):
    """Light, label-preserving augmentation of a float32 batch (0-255 range).

    One affine warp per image (horizontal flip, shift up to ``shift`` of the
    size, rotation up to ``rotation`` degrees, zoom up to ``zoom``, reflected
    borders), then contrast (factor in 1 +- ``contrast`` around the image mean)
    and brightness (+- ``brightness`` x 255). Stateless: the same ``seed`` gives
    the same result.
    """
    tf = tf_module()
    seed = tf.cast(seed, tf.int64)
    n = tf.shape(images)[0]
    h = tf.cast(tf.shape(images)[1], tf.float32)
    w = tf.cast(tf.shape(images)[2], tf.float32)

    def uniform(k, lo, hi):
        return tf.random.stateless_uniform([n], seed=seed + k, minval=lo, maxval=hi)

    flip, shift = augment.get("flip", False), float(augment.get("shift", 0.0))
    rotation, zoom = float(augment.get("rotation", 0.0)), float(augment.get("zoom", 0.0))
    if flip or shift or rotation or zoom:
        f = tf.where(uniform(1, 0.0, 1.0) < 0.5, -1.0, 1.0) if flip else tf.ones([n])
        theta = uniform(2, -rotation, rotation) * (math.pi / 180.0)
        s = uniform(3, 1.0 - zoom, 1.0 + zoom)
        tx, ty = uniform(4, -shift, shift) * w, uniform(5, -shift, shift) * h
        cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
        # output pixel p -> input pixel M (p - c - t) + c, with M = R(theta) diag(f, 1) / s
        cos, sin = tf.cos(theta) / s, tf.sin(theta) / s
        m00, m01, m10, m11 = cos * f, -sin, sin * f, cos
        a2 = cx - m00 * (cx + tx) - m01 * (cy + ty)
        b2 = cy - m10 * (cx + tx) - m11 * (cy + ty)
        zeros = tf.zeros([n])
        transforms = tf.stack([m00, m01, a2, m10, m11, b2, zeros, zeros], axis=1)
        images = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=tf.shape(images)[1:3],
            fill_value=0.0,
            interpolation="BILINEAR",
            fill_mode="REFLECT",
        )
    contrast, brightness = float(augment.get("contrast", 0.0)), float(augment.get("brightness", 0.0))
    if contrast:
        c = tf.reshape(uniform(6, 1.0 - contrast, 1.0 + contrast), [-1, 1, 1, 1])
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * c + mean
    if brightness:
        images = images + tf.reshape(uniform(7, -brightness, brightness), [-1, 1, 1, 1]) * 255.0
    if contrast or brightness:
        images = tf.clip_by_value(images, 0.0, 255.0)
    return images


def _add_channel(x):
    return x[..., np.newaxis] if x.ndim == 3 else x
