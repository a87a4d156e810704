"""Contact sheets of the label detector's gender suspects, to judge by eye how many are real errors.

On one split of a UTKFace folder (``make_split(seed)``), the detector
(``data.label_detector``: ``hog+lbp+color`` or ``dlib128``) judges the training part's
gender labels out of fold, as a run does. Of the adult suspects (age >= 18, where gender
is visible in a face), it draws PNG contact sheets with each face's given and suggested
gender and the detector's confidence:

- ``top.png``: every suspect the detector gives the other gender 98 % or more;
- ``band.png``: those between 90 % and 98 % (at most ``--max`` of them, drawn at random);
- ``random.png``: ``--random`` drawn at random from all adult suspects.

It prints the counts per confidence band. The sheets show licensed faces: write them
outside the project (``/tmp``), look at them, and record only the counts::

    python benchmarks/label_contact_sheets.py --detector dlib128 --out /tmp/sheets-dlib128
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facebench.compare.planning.config import resolve
from facebench.compare.label_errors.detector import detector_choice, detector_features, suspect_labels
from facebench.data import load_dataset, make_split

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface-5k"
BANDS = ((0.98, 1.01, "98 % or more"), (0.9, 0.98, "90 - 98 %"), (0.6, 0.9, "60 - 90 %"))
WORD = {0: "M", 1: "F"}


def sheet(rows, path: Path, title: str, columns: int = 8) -> None:
    from matplotlib.figure import Figure
    from PIL import Image

    n = max(len(rows), 1)
    lines = -(-n // columns)
    fig = Figure(figsize=(columns * 1.6, lines * 1.9 + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(lines, columns)).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for k, (ax, row) in enumerate(zip(axes, rows.itertuples())):
        with Image.open(row.path) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        ax.set_title(f"#{k + 1} given {WORD[row.given]} -> {WORD[row.suggested]}\n{row.confidence:.2f}, {row.age} y",
                     fontsize=7)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=70)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--detector", default="dlib128", choices=["hog+lbp+color", "dlib128"])
    ap.add_argument("--out", required=True, help="folder for the PNG sheets (outside the project)")
    ap.add_argument("--max", type=int, default=48, help="faces on the top and band sheets at most")
    ap.add_argument("--random", type=int, default=24, help="faces drawn at random from all adult suspects")
    args = ap.parse_args(argv)

    table = load_dataset(args.data).table.reset_index(drop=True)
    config = resolve({"preset": "standard", "data": {"path": args.data, "label_detector": args.detector}})
    features = detector_features(table, config)
    train, test = make_split(table, seed=args.seed, test_size=0.2)
    issues = suspect_labels(features, table, train, test_rows=test, seed=args.seed, tasks=("gender",),
                            features_name=detector_choice(config))
    issues = issues[issues["part"] == "train"].merge(table[["image_id", "age"]], on="image_id")
    adults = issues[issues["age"] >= 18].sort_values("confidence", ascending=False, kind="stable")
    print(f"detector {args.detector}, split {args.seed}: {len(issues)} gender suspects in the training part, "
          f"{len(adults)} adults")
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    for low, high, label in BANDS:
        band = adults[(adults["confidence"] >= low) & (adults["confidence"] < high)]
        print(f"  other gender {label}: {len(band)} adults ({int(((issues['confidence'] >= low) & (issues['confidence'] < high)).sum())} all ages)")
    top = adults[adults["confidence"] >= 0.98].head(args.max)
    sheet(top, out / "top.png", f"{args.detector}: adult suspects given the other gender >= 98 % ({len(top)})")
    band = adults[(adults["confidence"] >= 0.9) & (adults["confidence"] < 0.98)]
    if len(band) > args.max:
        band = band.iloc[np.sort(rng.choice(len(band), args.max, replace=False))]
    sheet(band, out / "band.png", f"{args.detector}: adult suspects 90 - 98 % ({len(band)} shown)")
    drawn = adults.iloc[np.sort(rng.choice(len(adults), min(args.random, len(adults)), replace=False))]
    sheet(drawn, out / "random.png", f"{args.detector}: {len(drawn)} adult suspects drawn at random")
    print(f"wrote {out}/top.png, band.png, random.png")


if __name__ == "__main__":
    main()
