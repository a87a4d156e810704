"""The ``facebench`` command.

Exit status: 0 done, 2 a user error (one clear line on stderr), 1 a bug
(traceback). Heavy imports (TensorFlow, scikit-learn) happen inside the
subcommands so that ``facebench --help`` is instant.
"""

from __future__ import annotations

import argparse
import logging
import os

import sys
from pathlib import Path

from . import __version__
from .console import CONSOLE, shown_on_stderr
from .errors import UserError
from .io import writable_dir
from .rundir import layout

DEMO_N = 2000


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = _console_logging(verbose=getattr(args, "verbose", False))
    try:
        with shown_on_stderr():  # what the jobs below say to the person at the terminal
            return _dispatch(args)
    finally:
        logging.getLogger("facebench").removeHandler(handler)


def _dispatch(args) -> int:
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"facebench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so that the interpreter's final flush is quiet
        return 0
    except OSError as exc:  # full disk, unwritable folder, ...: the environment's fault, not a bug
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"facebench {args.command}: error: {where}{exc.strerror or exc}; finished work is kept, "
              "rerun to resume once this is fixed", file=sys.stderr)
        return 1
    except Exception as exc:
        from .compare.running import UnitsFailed

        if not isinstance(exc, UnitsFailed):
            raise
        print(f"facebench {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"facebench {args.command}: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facebench",
        description="Benchmark hand-crafted (HOG, LBP) against learned (CNN) face features "
        "for age regression and gender classification.",
    )
    parser.add_argument("--version", action="version", version=f"facebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="synthetic faces -> quick benchmark -> report.html",
                       description="Draw synthetic faces, run the quick preset on them and write the report. "
                       "The faces are synthetic cartoons: the numbers say nothing about real faces.")
    p.add_argument("--out", type=Path, default=Path("facebench-demo"), help="output folder (default: ./facebench-demo)")
    p.add_argument("--n", type=int, default=DEMO_N, help=f"number of synthetic faces (default {DEMO_N})")
    p.add_argument("--force", action="store_true", help="recompute finished units")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("run", help="run a benchmark on a dataset",
                       description="Run the benchmark (trials x fractions x models) and write a run directory with report.html.")
    _job_flags(p, presets="quick | standard | seed | full (default: standard)", config="a TOML config file",
               out="run directory (default: runs/<preset>-<dataset>)",
               example="e.g. --set trials=5 --set models.gender=['hog+svm']", dask="run units on",
               force="recompute finished units instead of resuming")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("sweep", help="search a model's hyperparameters on a validation part of the training part",
                       description="Evaluate points of a search space (grid, random, TPE or one parameter at a "
                       "time) on a validation part carved from the training part; no test face reaches a model. "
                       "Writes points.csv, best.toml (a run config that confirms the winner on the test part) and "
                       "report.html. Rerunning the same command resumes.")
    _job_flags(p, presets="seed-scope (the study's own open question)", config="a sweep TOML file",
               out="sweep directory (default: sweeps/<preset or base>-<dataset>)",
               example="e.g. --set n=8 --set budget_minutes=20", dask="evaluate points on",
               force="start the sweep again instead of resuming")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("report", help="rebuild a run's report.html, or put several runs side by side",
                       description="Rebuild RUN_DIR/report.html from the run directory alone (no model is loaded, "
                       "nothing is trained). With several run directories and --out, write one page that puts "
                       "them side by side.")
    p.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", type=Path, default=None, help="the side-by-side page (needed for two or more runs)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("explore", help="audit a dataset: explore.html and audit.json",
                       description="Scan a dataset, write DIR/explore.html (audit, distributions, sample faces) and DIR/audit.json.")
    p.add_argument("--data", required=True, help="folder of UTKFace-named images or CSV manifest")
    p.add_argument("--out", type=Path, default=Path("facebench-explore"), help="output folder (default: ./facebench-explore)")
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("predict", help="predict age and gender for faces in photos",
                       description="Find the faces in photos (OpenCV Haar cascade; an image that already looks "
                       "like a face chip is used whole) and predict with the run's models: one JSON line per face.")
    p.add_argument("--run", dest="run_dir", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("--model", action="append", default=None,
                   help="model name (repeatable; default: the best gender model, the best age model and every CNN)")
    _detect_flags(p)
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("synth", help="write synthetic UTKFace-named faces",
                       description="Draw synthetic cartoon faces whose look depends on age and gender, "
                       "named like UTKFace chips. They are not photographs of people.")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--n", type=int, default=DEMO_N, help=f"number of faces (default {DEMO_N})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("explain", help="what HOG, LBP and the CNN see in one face",
                       description="Draw what HOG, LBP and the run's CNN see in one face, with the run's models' "
                       "predictions; the face is found and cropped as facebench predict does.")
    p.add_argument("--run", dest="run_dir", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("image", type=Path, metavar="IMAGE")
    p.add_argument("--out", type=Path, default=None, help="output PNG or HTML file (default: <image stem>-explain.png)")
    _detect_flags(p)
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("models", help="the models facebench knows, one line each",
                       description="Every registered model: name, tasks, features, estimator, input, and what it is.")
    p.add_argument("--params", default=None, metavar="NAME",
                   help="list the parameters a variant of NAME may set (classical: scikit-learn names; cnn:NAME)")
    p.set_defaults(func=_cmd_models)

    for p in sub.choices.values():
        p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def _job_flags(p, *, presets, config, out, example, dask, force) -> None:
    """The flags ``run`` and ``sweep`` share (the same meaning, each its own wording)."""
    p.add_argument("--data", default=None,
                   help="folder of UTKFace-named images or CSV manifest (path,age,gender[,race]); "
                   "default: data.path of --config")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--preset", default=None, help=presets)
    g.add_argument("--config", type=Path, default=None, help=config)
    p.add_argument("--out", type=Path, default=None, help=out)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config key, {example}")
    p.add_argument("--dask", default=None, metavar="ADDRESS", help=f"{dask} an existing Dask scheduler")
    p.add_argument("--force", action="store_true", help=force)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")


def _detect_flags(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--detect", dest="detect", action="store_const", const=True, default=None,
                   help="always look for faces and crop them (default: only for images that are not face chips)")
    g.add_argument("--no-detect", dest="detect", action="store_const", const=False,
                   help="treat each image as an already cropped face")


# --------------------------------------------------------------------------- commands


def _cmd_synth(args) -> int:
    from .data import synthesize

    if args.n < 1:
        raise UserError(f"--n {args.n}: expected a positive number of faces")
    if not 16 <= args.size <= 1024:
        raise UserError(f"--size {args.size}: expected 16-1024 pixels")
    writable_dir(args.out, "--out")
    paths = synthesize(args.out, n=args.n, seed=args.seed, size=args.size)
    print(f"wrote {len(paths)} synthetic faces to {args.out} (cartoons, not photographs of people)")
    return 0


def _cmd_explore(args) -> int:
    from .data import find_near_duplicates, load_dataset
    from .reports import write_explore

    writable_dir(args.out, "--out")
    dataset = find_near_duplicates(load_dataset(args.data))  # as a run with the default keys finds them
    html = write_explore(dataset, args.out)
    a = dataset.audit
    print(f"found {a['found']}, used {a['used']}, skipped {len(a['skipped'])}; "
          f"duplicates {len(a['duplicates'])}, near-duplicate groups {a['near_duplicates']['groups']}")
    print(f"wrote {html} and {Path(args.out) / layout.AUDIT_FILE}")
    return 0


def _cmd_demo(args) -> int:
    from .compare import demo
    from .reports import write_report

    writable_dir(args.out, "--out")
    run_dir = demo(args.out, n=args.n, force=args.force, quiet=args.quiet)
    print(f"report: {write_report(run_dir)}")
    return 0


def _cmd_run(args) -> int:
    from .compare import load_config, run
    from .compare.running import UnitsFailed
    from .reports import write_report

    out = args.out
    if out is None and args.config is not None and (args.config.parent / layout.RUN_FILE).is_file():
        out = args.config.parent  # a run's own config.toml repeats that run where it now lies
    config = load_config(preset=args.preset, path=args.config, overrides=args.overrides,
                         data=args.data, out=out, dask=args.dask)
    try:
        run_dir = run(config, force=args.force, quiet=args.quiet, command=_command_line())
    except UnitsFailed as exc:
        try:
            write_report(exc.run_dir)  # the finished units still make a report
        except UserError:
            pass  # no unit finished: nothing to report, the failure line says why
        raise
    print(f"report: {write_report(run_dir)}")
    return 0


def _cmd_sweep(args) -> int:
    from .compare.search.study import sweep
    from .compare.search.sweep_config import load_sweep_config
    from .reports.sweep import write_sweep_report
    from .rundir.sweepdir import BEST_FILE, INFO_FILE

    if args.preset is None and args.config is None:
        raise UserError("give --config SWEEP.toml or --preset seed-scope")
    out = args.out
    if out is None and args.config is not None and (args.config.parent / INFO_FILE).is_file():
        out = args.config.parent  # a sweep's own sweep.toml resumes that sweep where it now lies
    config = load_sweep_config(preset=args.preset, path=args.config, overrides=args.overrides,
                               data=args.data, out=out, dask=args.dask)
    sweep_dir = sweep(config, force=args.force, quiet=args.quiet, command=_command_line())
    print(f"report: {write_sweep_report(sweep_dir)}")
    best = sweep_dir / BEST_FILE
    if best.is_file():
        print(f"confirm on the test part: facebench run --config {best}")
    return 0


def _cmd_report(args) -> int:
    from .reports import write_report

    if len(args.run_dirs) == 1 and args.out is None:
        print(f"report: {write_report(args.run_dirs[0])}")
        return 0
    if args.out is None:
        raise UserError("several run directories need --out FILE.html for the side-by-side page")
    from .reports.comparison import write_comparison

    print(f"comparison: {write_comparison(args.run_dirs, args.out)}")
    return 0


def _cmd_predict(args) -> int:
    return predict_cli(args.run_dir, args.images, models=args.model, detect=args.detect)


def predict_cli(run_dir, images, models=None, detect: bool | None = None) -> int:
    """Print ``facebench predict``'s JSON lines on stdout, warnings and errors on stderr; the exit status."""
    from .compare.inference.predict import predict_files

    failed = 0
    for stream, text in predict_files(run_dir, images, models=models, detect=detect):
        if stream == "out":
            print(text, flush=True)
        else:
            failed += stream == "error"
            print(f"facebench predict: {stream}: {text}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def _cmd_explain(args) -> int:
    from .compare.inference.explain import explain_image
    from .data.faces import read_image
    from .reports.drawing import write_explain

    try:
        pixels = read_image(args.image)
    except ValueError as exc:
        raise UserError(f"{args.image}: {exc}") from None
    meta, arrays = explain_image(args.run_dir, pixels, name=args.image.name, detect=args.detect)
    out = args.out if args.out is not None else Path(f"{args.image.name.split('.')[0] or 'face'}-explain.png")
    print(f"wrote {write_explain(out, meta, arrays, args.run_dir)}")
    return 0


def _cmd_models(args) -> int:
    if args.params:
        return _model_params(args.params)
    from .baselines import MODEL_TASKS, describe
    from .baselines.model_times import LIBRARY_NAMES, typical_times
    from .baselines.svm_backend import resolve
    from .cnn import cnn_names
    from .cnn import describe as describe_cnn

    rows = [describe(name) for name in MODEL_TASKS] + [{**describe_cnn(n), "name": f"cnn:{n}"} for n in cnn_names()]
    here = resolve("auto")  # the library this machine fits the RBF SVMs with
    times = {}
    for r in rows:
        measured = typical_times(r["name"], here)
        library = ("TensorFlow" if r["name"].startswith("cnn:") else LIBRARY_NAMES[here]
                   if r.get("estimator") in ("svm", "svr") else LIBRARY_NAMES["sklearn"])
        shown = "-"
        if measured:  # the figure's own library (a model measured before oneDAL says libsvm)
            library = LIBRARY_NAMES[measured[0]]
            shown = f"{measured[1]:.1f} / " + (f"{measured[2]:.2f} s" if measured[2] is not None else "- s")
        times[r["name"]] = (shown, library)
    # the default CNN per epoch on the 5k subset's 3,580 training faces, oneDNN's kernels, in a standard
    # trial on a quiet machine (benchmarks/RESULTS.md, "fourth session")
    times["cnn:default"] = ("10 s/epoch", "TensorFlow")
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'tasks':<7}  {'input':<10}  {'fit / predict (5k)':>18}  {'fitted by':<12}  what it is")
    for r in rows:
        tasks = "+".join(r["tasks"]) if len(r["tasks"]) < 2 else "both"
        size = f"{r['image_size']}px " if r.get("image_size") else ""
        shown, library = times[r["name"]]
        print(f"{r['name']:<{width}}  {tasks:<7}  {size + (r.get('color') or 'gray'):<10}  "
              f"{shown:>18}  {library:<12}  {r['summary']}")
    print("fit / predict (5k): median seconds to fit (tuning included) on the 3,977 training faces of the 5k "
          "UTKFace subset and to predict its ~995 test faces, features aside, one core of 2 (AMD EPYC; "
          f"benchmarks/RESULTS.md). fitted by: the library; RBF SVMs by {LIBRARY_NAMES[here]} on this machine "
          "(config key svm_backend).\nCNNs go in models.cnn without the 'cnn:' prefix; classical models in "
          "models.gender / models.age.")
    return 0


def _model_params(name: str) -> int:
    """Every parameter a variant of ``name`` may set, with its default."""
    from .baselines import MODEL_TASKS
    from .compare.planning.variants import cnn_presets, settable_params

    if name.startswith("cnn:") and name[4:] in cnn_presets():
        from .cnn import default_params

        params = default_params(name[4:])
        where = f"[cnn.NAME] with base = {name[4:]!r}"
    elif name in MODEL_TASKS:
        params = settable_params(name)
        where = f"[classical.NAME] with base = {name!r}, params = {{...}} (a unique ending of a name works too)"
    else:
        known = ", ".join([*MODEL_TASKS, *(f"cnn:{n}" for n in cnn_presets())])
        raise UserError(f"--params {name!r}: unknown model; known: {known}")
    width = max(len(k) for k in params)
    for key, value in params.items():
        print(f"{key:<{width}}  {_plain(value)!r}")
    print(f"set them in a variant: {where}")
    return 0


# --------------------------------------------------------------------------- helpers


def _plain(value):
    """NumPy scalars and tuples as a user writes them in TOML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


class _OneLine(logging.Formatter):
    """Console lines without tracebacks: those go to the run's run.log."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _console_logging(verbose: bool) -> logging.Handler:
    """Warnings (or, with -v, progress notes) on stderr, one line each; the run log keeps everything."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(_OneLine())
    handler.addFilter(lambda record: record.name != CONSOLE.name)  # shown by shown_on_stderr, once
    logger = logging.getLogger("facebench")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def _command_line() -> str:
    import shlex

    return "facebench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
