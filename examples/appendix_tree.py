"""Appendix illustration 2: a decision tree on the iris flowers.

The study illustrated classification with a decision tree on Fisher's iris data
(150 flowers, 4 measurements, 3 species), which ships with scikit-learn
(``load_iris``: no download). The tree is fitted on a stratified training part,
its accuracy measured on a held-out part, and the tree drawn.

Run: ``python examples/appendix_tree.py [OUT_DIR]``; writes ``tree.png``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, plot_tree

SEED = 0
MAX_DEPTH = 3  # a small tree stays readable and barely loses accuracy on iris


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="facebench-tree-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    iris = load_iris()
    X_train, X_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=SEED, stratify=iris.target)
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, random_state=SEED).fit(X_train, y_train)
    accuracy = accuracy_score(y_test, tree.predict(X_test))
    print(f"decision tree (depth <= {MAX_DEPTH}, {tree.get_n_leaves()} leaves): "
          f"test accuracy {accuracy:.3f} on {len(y_test)} held-out flowers")

    fig = Figure(figsize=(10, 6), layout="constrained")
    FigureCanvasAgg(fig)  # plot_tree measures its text boxes, so the figure needs a renderer
    ax = fig.subplots()
    plot_tree(tree, feature_names=iris.feature_names, class_names=list(iris.target_names),
              filled=True, rounded=True, impurity=False, fontsize=8, ax=ax)
    ax.set_title(f"Decision tree on iris: test accuracy {accuracy:.1%}")
    path = out_dir / "tree.png"
    fig.savefig(path, dpi=80)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
