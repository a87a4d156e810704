"""Appendix illustration 1: linear regression of blood pressure on age.

The study illustrated regression with blood pressure against age. Here the data are
synthetic, drawn with a fixed seed from a known line (systolic pressure rises about
0.6 mmHg a year from 100 mmHg, with noise of sd 8 mmHg), so the fitted line can be
checked against the truth. A scikit-learn ``LinearRegression`` is fitted on a training
part and scored by its mean squared error (MSE) on a held-out part.

Run: ``python examples/appendix_regression.py [OUT_DIR]``; writes ``regression.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import train_test_split

SEED = 0
N = 200
TRUE_INTERCEPT, TRUE_SLOPE, NOISE_SD = 100.0, 0.6, 8.0  # mmHg, mmHg per year, mmHg


def make_data(n: int = N, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Ages 18-80 and systolic blood pressure = 100 + 0.6 * age + noise (synthetic)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, size=n)
    pressure = TRUE_INTERCEPT + TRUE_SLOPE * age + rng.normal(0, NOISE_SD, size=n)
    return age.reshape(-1, 1), pressure


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="facebench-regression-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    X, y = make_data()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=SEED)
    model = LinearRegression().fit(X_train, y_train)
    mse = mean_squared_error(y_test, model.predict(X_test))
    slope, intercept = float(model.coef_[0]), float(model.intercept_)
    print(f"fitted: pressure = {intercept:.1f} + {slope:.3f} x age   (truth: {TRUE_INTERCEPT:g} + {TRUE_SLOPE:g} x age)")
    print(f"test MSE: {mse:.1f} mmHg^2 (RMSE {np.sqrt(mse):.1f} mmHg; the noise alone gives {NOISE_SD ** 2:.0f})")

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    ax.scatter(X_train[:, 0], y_train, s=12, alpha=0.6, label="training data")
    ax.scatter(X_test[:, 0], y_test, s=12, alpha=0.8, marker="x", label="test data")
    line = np.linspace(18, 80, 2).reshape(-1, 1)
    ax.plot(line[:, 0], model.predict(line), color="black", label=f"fit: {intercept:.1f} + {slope:.2f} x age")
    ax.set_xlabel("age (years)")
    ax.set_ylabel("systolic blood pressure (mmHg)")
    ax.set_title(f"Linear regression on synthetic data: test MSE {mse:.1f}")
    ax.legend(frameon=False)
    path = out_dir / "regression.png"
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
