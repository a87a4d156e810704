"""Seconds per training epoch of the CNN presets, side by side, from one run.

Trains each preset through ``facebench.cnn.fit`` (the real tf.data pipeline,
augmentation and validation included) on random uint8 images of the preset's
own size, stops after ``--warmup + --steps`` batches, and extrapolates::

    s/epoch = ceil(n_train * (1 - validation_split) / batch_size) * median s/step
              + a timed prediction over the validation slice (n_train * validation_split)

``cpu-s/epoch`` is the process CPU time of the training steps (both cores
together; validation not included): on an idle 2-core machine s/epoch is about
half of it, and it is steadier than wall time when other jobs share the cores.
Random pixels cost the same as faces, so no data set is needed. The machine's
other load shows up in the numbers: run it on an idle machine, or read the
spread (p10-p90 of the step times) it prints.

    python benchmarks/bench_cnn.py                      # seed at 128 px vs default, 19,000 images
    python benchmarks/bench_cnn.py --steps 10 --n-train 4000
    python benchmarks/bench_cnn.py --models default --set default.filters=[24,48,96,192]
    python benchmarks/bench_cnn.py --models default --n-train 4000 --precisions float32 bfloat16 --xla on off

With ``--precisions`` and ``--xla`` every model is timed in each combination, one after the
other in this one process, and the bfloat16 / float32 rate ratios are printed side by side
(bfloat16 pays only on a CPU with AMX or AVX512-BF16, which the header line says).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np


def bench(name, n_train, steps, warmup, overrides, seed=0):
    from facebench import cnn
    from facebench.cnn.models import keras_module

    keras = keras_module()
    params = cnn.resolve_params(name, {**overrides, "epochs": 1, "patience": None, "lr_schedule": None})
    size, channels = params["image_size"], 3 if params["color"] == "rgb" else 1
    rng = np.random.default_rng(seed)
    shape = (n_train, size, size) + ((3,) if channels == 3 else ())
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    age, gender = rng.integers(1, 100, n_train), rng.integers(0, 2, n_train)

    class StepTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.ends = [time.perf_counter()]
            self.cpu = [time.process_time()]

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            self.cpu.append(time.process_time())
            if batch + 1 >= warmup + steps:
                self.model.stop_training = True

    timer = StepTimer()
    fitted = cnn.fit(name, images, age, gender, params=params, seed=seed, callbacks=[timer])
    # the validation pass, timed as a second prediction over as many images (the
    # first one at the epoch's end includes tracing / XLA compilation)
    n_val = fitted.timings["n_validation"]
    fitted.predict(images[:n_val], batch_size=params["batch_size"])
    t0 = time.perf_counter()
    fitted.predict(images[:n_val], batch_size=params["batch_size"])
    validation_s = time.perf_counter() - t0
    step_s = np.diff(timer.ends)[warmup:]
    cpu_step_s = (timer.cpu[-1] - timer.cpu[warmup]) / max(1, len(timer.cpu) - 1 - warmup)
    full_steps = math.ceil(fitted.timings["n_train"] / params["batch_size"])
    return {
        "model": name,
        "input": f"{size}x{size}x{channels}",
        "params": fitted.model.count_params(),
        "batch": params["batch_size"],
        "n_train": fitted.timings["n_train"],
        "n_val": fitted.timings["n_validation"],
        "s_per_step": float(np.median(step_s)),
        "p10": float(np.percentile(step_s, 10)),
        "p90": float(np.percentile(step_s, 90)),
        "img_per_s": params["batch_size"] / float(np.median(step_s)),
        "cpu_s_per_step": cpu_step_s,
        "cpu_s_per_epoch_train": full_steps * cpu_step_s,
        "val_s": validation_s,
        "s_per_epoch": full_steps * float(np.median(step_s)) + validation_s,
        "first_step_s": float(np.diff(timer.ends)[0]),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["seed", "default"], help="presets to time (default: seed default)")
    ap.add_argument("--n-train", type=int, default=19_000, help="training images per epoch (default 19000)")
    ap.add_argument("--steps", type=int, default=20, help="timed training steps per model (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, XLA; default 3)")
    ap.add_argument(
        "--set", action="append", default=[], metavar="MODEL.KEY=JSON",
        help="override a parameter, e.g. seed.image_size=64 or default.jit_compile=false (repeatable)",
    )
    ap.add_argument("--precisions", nargs="+", choices=["float32", "bfloat16"],
                    help="time each model in each precision (default: the preset's own)")
    ap.add_argument("--xla", nargs="+", choices=["on", "off"], help="time each model with and/or without XLA")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)

    overrides = {m: {} for m in args.models}
    for item in args.set:
        key, _, value = item.partition("=")
        model, _, param = key.partition(".")
        if model not in overrides or not param:
            ap.error(f"--set {item!r}: expected MODEL.KEY=VALUE with MODEL one of {', '.join(args.models)}")
        try:
            overrides[model][param] = json.loads(value)
        except json.JSONDecodeError:
            overrides[model][param] = value
        if isinstance(overrides[model][param], list):
            overrides[model][param] = tuple(overrides[model][param])

    from facebench.machine import cpu_name, has_bf16, usable_cores

    print(f"# {cpu_name()}, {usable_cores()} cores usable, native bfloat16: {'yes' if has_bf16() else 'no'}, "
          f"load average {os.getloadavg()[0]:.2f}; {args.n_train} training images; {args.steps} timed steps "
          f"after {args.warmup}")
    variants = [({} if prec is None else {"precision": prec}) | ({} if xla is None else {"jit_compile": xla == "on"})
                for xla in (args.xla or [None]) for prec in (args.precisions or [None])]
    rows = []
    for m in args.models:
        for variant in variants:
            row = bench(m, args.n_train, args.steps, args.warmup, {**overrides[m], **variant})
            row["precision"] = variant.get("precision", "preset")
            row["xla"] = {True: "on", False: "off"}.get(variant.get("jit_compile"), "preset")
            rows.append(row)
    header = (f"{'model':<8} {'precision':>9} {'xla':>6} {'input':>10} {'params':>10} {'batch':>5} {'img/s':>7} "
              f"{'s/step (p10-p90)':>22} {'val s':>6} {'s/epoch':>8} {'cpu-s/epoch':>11}")
    print(header)
    for r in rows:
        spread = f"{r['s_per_step']:.3f} ({r['p10']:.3f}-{r['p90']:.3f})"
        print(f"{r['model']:<8} {r['precision']:>9} {r['xla']:>6} {r['input']:>10} {r['params']:>10,} {r['batch']:>5} "
              f"{r['img_per_s']:>7.0f} {spread:>22} {r['val_s']:>6.1f} {r['s_per_epoch']:>8.1f} "
              f"{r['cpu_s_per_epoch_train']:>11.1f}")
    by_key = {(r["model"], r["xla"], r["precision"]): r for r in rows}
    for (model, xla, prec), r in by_key.items():
        base = by_key.get((model, xla, "float32"))
        if prec == "bfloat16" and base:
            print(f"# {model}, XLA {xla}: bfloat16 trains at {base['s_per_step'] / r['s_per_step']:.2f}x the float32 "
                  f"rate ({r['img_per_s']:.0f} against {base['img_per_s']:.0f} images/s)")
    if len(rows) == 2 and len(args.models) == 2:
        print(f"# {rows[0]['model']} / {rows[1]['model']} per epoch: {rows[0]['s_per_epoch'] / rows[1]['s_per_epoch']:.1f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
