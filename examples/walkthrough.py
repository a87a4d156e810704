"""A walk-through: one face -> its HOG, LBP and CNN features -> a small comparison.

Run it with ``python examples/walkthrough.py [OUT_DIR]`` (default: a new temporary
folder). It draws 300 synthetic faces (cartoons made by facebench, not photographs:
the numbers say nothing about real faces), and writes three pictures into OUT_DIR:

1. ``1-one-face.png``: a face, its HOG picture and its LBP code image;
2. ``2-what-each-method-sees.png``: the same face through HOG, LBP and a small CNN
   trained here (first-layer filters, feature maps, Grad-CAM);
3. ``3-comparison.png``: test-set accuracy (gender) and mean absolute error (age) of
   hand-crafted features against the CNN.

It takes well under a minute on two cores. For the full benchmark use
``facebench demo`` or ``facebench run``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from facebench import cnn  # noqa: E402
from facebench.baselines import HOGFeatures, LBPFeatures, make_model, predict_outputs  # noqa: E402
from facebench.data import decode, load_dataset, make_split, synthesize  # noqa: E402
from facebench.baselines.pictures import hog_picture, lbp_picture  # noqa: E402
from facebench.compare.inference.loading import LoadedModel  # noqa: E402
from facebench.compare.inference.explain import Methods, compute_views  # noqa: E402
from facebench.reports.drawing import face_figure  # noqa: E402

N_FACES = 300
SEED = 0
SIZE = 64  # what the classical models see
CNN_SIZE = 32  # a small CNN input keeps this example fast
CNN_PARAMS = {"image_size": CNN_SIZE, "epochs": 4, "jit_compile": False, "stem_filters": 8, "filters": (8, 16, 32, 64),
              "dense_units": 32, "patience": None, "batch_size": 32}


def one_face(face: np.ndarray, out_dir: Path) -> Path:
    """Step 1: what HOG and LBP compute for one face."""
    hog, lbp = HOGFeatures(), LBPFeatures()
    hog_vector = hog.transform(face[None])[0]
    lbp_vector = lbp.transform(face[None])[0]
    codes, histograms = lbp_picture(face, lbp)
    print(f"HOG: {len(hog_vector)} numbers (cells of {hog.pixels_per_cell} pixels, {hog.orientations} "
          f"orientations, blocks of {hog.cells_per_block} cells)")
    print(f"LBP: {len(lbp_vector)} numbers ({histograms.shape[0]}x{histograms.shape[1]} cells x "
          f"{histograms.shape[2]} codes)")

    fig = Figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    pictures = [(face, "the face (64x64 gray)", "gray"),
                (hog_picture(face, hog), f"HOG: {len(hog_vector)} numbers", "gray"),
                (codes, f"LBP codes: {len(lbp_vector)} numbers", "viridis")]
    for ax, (image, title, cmap) in zip(axes, pictures):
        ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(title)
        ax.axis("off")
    fig.suptitle("Step 1: hand-crafted features of one face")
    path = out_dir / "1-one-face.png"
    fig.savefig(path, dpi=80)
    return path


def compare(table, images, small, train, test):
    """Step 3: classical models and a CNN on the same split; returns {model: {metric: value}}."""
    age, gender = table["age"].to_numpy(), table["gender"].to_numpy()
    results = {}
    for name, task in [("dummy", "gender"), ("hog+linsvm", "gender"), ("dummy", "age"),
                       ("hog+ridge", "age"), ("lbp+ridge", "age")]:
        model = make_model(name, task, random_state=SEED)
        target = gender if task == "gender" else age
        model.fit(images[train], target[train])
        out = predict_outputs(model, images[test], task)
        results.setdefault(name, {})
        if task == "gender":
            results[name]["accuracy"] = float(np.mean(out["gender"] == gender[test]))
        else:
            results[name]["mae"] = float(np.mean(np.abs(out["age"] - age[test])))

    t = time.perf_counter()
    fitted = cnn.fit("default", small[train], age[train], gender[train], params=CNN_PARAMS, seed=SEED)
    print(f"CNN trained in {time.perf_counter() - t:.1f} s ({fitted.timings['epochs_run']} epochs)")
    out = fitted.predict(small[test])
    results["cnn-default"] = {"accuracy": float(np.mean(out["gender"] == gender[test])),
                              "mae": float(np.mean(np.abs(out["age"] - age[test])))}
    return results, fitted


def comparison_figure(results, out_dir: Path) -> Path:
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax_acc, ax_mae = fig.subplots(1, 2)
    for ax, metric, label in ((ax_acc, "accuracy", "gender: accuracy (higher is better)"),
                              (ax_mae, "mae", "age: mean absolute error, years (lower is better)")):
        names = [n for n in results if metric in results[n]]
        values = [results[n][metric] for n in names]
        ax.barh(names, values, color=["#1f77b4" if n.startswith("cnn") else "#7f7f7f" for n in names])
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
        ax.set_title(label, fontsize=10)
        ax.invert_yaxis()
    fig.suptitle(f"Step 3: hand-crafted vs learned features on {N_FACES} synthetic faces (one split, tiny models)")
    path = out_dir / "3-comparison.png"
    fig.savefig(path, dpi=80)
    return path


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="facebench-walkthrough-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp:
        synthesize(Path(tmp) / "faces", n=N_FACES, seed=SEED, size=SIZE)
        dataset = load_dataset(Path(tmp) / "faces")
        table = dataset.table
        images = decode(dataset, size=SIZE, color="gray", cache_dir=False)
        small = decode(dataset, size=CNN_SIZE, color="gray", cache_dir=False)
        rgb = decode(dataset, size=SIZE, color="rgb", cache_dir=False)
    train, test = make_split(table, seed=SEED, test_size=0.25)
    print(f"{len(table)} synthetic faces: {len(train)} to train on, {len(test)} to test on")

    written = [one_face(images[test[0]], out_dir)]
    results, fitted = compare(table, images, small, train, test)

    cnn_model = LoadedModel("cnn-default", "walkthrough", "cnn", 0, 1.0, CNN_SIZE, "gray", cnn=fitted)
    methods = Methods(image_size=SIZE, color="gray", hog=HOGFeatures(), lbp=LBPFeatures(),
                      hog_source="HOGFeatures()", lbp_source="LBPFeatures()", cnn=cnn_model)
    row = table.iloc[test[0]]
    truth = f"{row['age']} y, {'female' if row['gender'] == 1 else 'male'}"
    meta, arrays = compute_views([{"image": rgb[test[0]], "label": truth, "file": ""}], methods)
    fig = face_figure(meta, arrays, title="Step 2: what each method sees")
    written.append(out_dir / "2-what-each-method-sees.png")
    fig.savefig(written[-1], dpi=80)
    written.append(comparison_figure(results, out_dir))

    print("\nmodel           gender accuracy   age MAE (years)")
    for name, r in results.items():
        acc = f"{r['accuracy']:.3f}" if "accuracy" in r else "-"
        mae = f"{r['mae']:.1f}" if "mae" in r else "-"
        print(f"{name:<16}{acc:>15}{mae:>18}")
    for path in written:
        print(f"wrote {path}")
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
