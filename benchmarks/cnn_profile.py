"""One training epoch of a CNN preset on this CPU: achieved FLOP/s against the cores' peak, input vs step.

    .venv/bin/python benchmarks/cnn_profile.py [--data ../shared/data/utkface-5k] [--model default] [--threads 2]
        [--onednn on|off] [--jit]

On the faces of ``--data`` (decoded at the preset's size and colour), it builds the
preset's model and its training input exactly as ``facebench.cnn.fit`` does, then times:

* the input pipeline alone: one epoch of ``make_dataset(..., training=True)`` batches
  (gathering, augmentation, prefetch) with no model;
* the training step alone: ``model.train_on_batch`` on one batch taken from the pipeline,
  repeated for an epoch's worth of steps (nothing waits for input);
* a real epoch: ``model.fit`` over the pipeline for one epoch (after one warm-up epoch
  that traces the step function).

FLOPs per image: TensorFlow's profiler counts the floating-point operations of one
forward pass of the Keras model (``float_operation()`` on the traced graph); a
training step costs about three forward passes (forward, and the backward pass's two
products per layer: gradients with respect to inputs and to weights). Achieved FLOP/s =
3 x forward FLOPs x images per second. Peak = cores x clock x FLOPs per cycle per
core; AVX2 with two 256-bit FMA units does 2 x 8 float32 lanes x 2 (multiply + add) =
32 FLOPs per cycle. The clock is ``--ghz`` (default: BogoMIPS / 2 from /proc/cpuinfo,
the base clock of this virtual machine's cores).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path


def base_ghz() -> float:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.lower().startswith("bogomips"):
            return float(line.split(":")[1]) / 2000.0
    return float("nan")


def forward_flops(model, input_shape) -> float:
    """FLOPs of one forward pass of one image, by TensorFlow's graph profiler."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((1, *input_shape), tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    graph = frozen.graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts)
    return float(info.total_float_ops)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/utkface-5k"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow threads (FACEBENCH_THREADS); 0: every core")
    ap.add_argument("--ghz", type=float, default=None)
    ap.add_argument("--onednn", choices=["on", "off"], default=None,
                    help="TensorFlow's oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS); default: facebench's choice "
                         "(on for x86-64)")
    ap.add_argument("--jit", action="store_true", help="compile the step with XLA (default: off)")
    args = ap.parse_args()
    if args.threads:
        os.environ["FACEBENCH_THREADS"] = str(args.threads)
    if args.onednn:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"

    import numpy as np

    from facebench.cnn import build_model, resolve_params
    from facebench.cnn.inputs import make_dataset, split_validation
    from facebench.cnn.models import keras_module, tf_module
    from facebench.cnn.recipe import age_loss, loss_weights, make_optimizer
    from facebench.data import decode, load_dataset

    tf = tf_module()
    keras = keras_module()
    p = resolve_params(args.model, {})
    table = load_dataset(args.data).table
    images = decode(table, size=p["image_size"], color=p["color"])
    x = images if images.ndim == 4 else images[..., None]
    age = table["age"].to_numpy().astype(np.float32)
    gender = table["gender"].to_numpy().astype(np.float32)
    train_idx, _ = split_validation(len(x), p["validation_split"], 0)
    n = len(train_idx)
    steps = math.ceil(n / p["batch_size"])
    ds = make_dataset(x[train_idx], age[train_idx], gender[train_idx], p, seed=0, training=True)

    # the input pipeline alone
    it = iter(ds)
    next(it)
    t = time.perf_counter()
    for _ in range(steps):
        batch = next(it)
    input_s = time.perf_counter() - t

    from facebench.cnn.params import builder_keys

    model = build_model(args.model, x.shape[1:], **{k: p[k] for k in builder_keys(args.model)})
    flops = forward_flops(model, x.shape[1:])
    model.compile(optimizer=make_optimizer(p, steps), loss={"age": age_loss(p), "gender": "binary_crossentropy"},
                  loss_weights=loss_weights(p), jit_compile=args.jit)
    xb, yb = batch[0], batch[1]
    for _ in range(3):
        model.train_on_batch(xb, yb)
    t, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        model.train_on_batch(xb, yb)
    step_s, step_cpu = time.perf_counter() - t, time.process_time() - cpu

    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)  # warm-up epoch
    t, cpu = time.perf_counter(), time.process_time()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
    epoch_s, epoch_cpu = time.perf_counter() - t, time.process_time() - cpu

    ghz = args.ghz or base_ghz()
    cores = int(os.environ.get("FACEBENCH_THREADS", 0)) or len(os.sched_getaffinity(0))
    peak = cores * ghz * 1e9 * 32
    per_s = n / epoch_s
    achieved = 3 * flops * per_s
    print(f"model {args.model}: {p['image_size']} px {p['color']}, batch {p['batch_size']}, {n} training faces, "
          f"{steps} steps; TensorFlow threads {cores}; oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS')}, "
          f"XLA {'on' if args.jit else 'off'}; load average {os.getloadavg()[0]:.1f}")
    print(f"CPU time per image: epoch {1000 * epoch_cpu / n:.2f} ms, step alone {1000 * step_cpu / n:.2f} ms")
    print(f"forward FLOPs per image {flops / 1e6:.1f} M (training ~3x: {3 * flops / 1e6:.1f} M)")
    print(f"epoch (model.fit) {epoch_s:.1f} s = {per_s:.0f} images/s; step alone {step_s:.1f} s "
          f"({n / step_s:.0f} images/s); input pipeline alone {input_s:.1f} s ({n / input_s:.0f} images/s)")
    print(f"achieved {achieved / 1e9:.1f} GFLOP/s of a peak {peak / 1e9:.1f} GFLOP/s "
          f"({cores} cores x {ghz:.2f} GHz x 32 FLOPs/cycle, AVX2 FMA float32) = {100 * achieved / peak:.1f} %")
    print(f"the step alone reaches {3 * flops * n / step_s / 1e9:.1f} GFLOP/s; the epoch spends "
          f"{max(0.0, epoch_s - step_s):.1f} s ({100 * max(0.0, epoch_s - step_s) / epoch_s:.0f} %) beyond the step "
          "(input not overlapped, callbacks, metrics)")
    _ = tf, keras


if __name__ == "__main__":
    main()
