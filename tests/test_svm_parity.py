"""oneDAL and libsvm give the same answer on real faces, within the split-to-split noise.

benchmarks/svm_backends.py measured every RBF model under both libraries over 3 splits
of the 5k UTKFace subset (benchmarks/RESULTS.md, "oneDAL against libsvm"); the
tolerances below are the split-to-split standard deviations measured there, and the
libraries differed by far less. One model per task, one split, both libraries, the
whole tuned head (scaler, PCA, mirror images, the 3-fold search of C, the final fit).

The heads are fitted on :data:`N_TRAIN` of the split's training faces, drawn at random,
and scored on all its test faces: the same claim on a smaller fit, a quarter of the
kernel work. With fewer training faces the models themselves vary more from split to
split, so holding the two libraries to the noise measured on the whole training part is
the stricter test, not a looser one. Measured on 1,000 faces (two draws): the same
accuracy to the face, ages within 0.00004 years. About 40 s of CPU in all, a quarter
of it the features.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from facebench.baselines import feature_step, input_color, make_head, predict_outputs
from facebench.baselines import svm_backend as sb
from facebench.data import decode, load_dataset, make_split

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sb.available(), reason="scikit-learn-intelex is not installed here")]

#: Split-to-split standard deviation over 3 splits of the 5k subset (libsvm), per model: accuracy
#: 0.8397 / 0.8291 / 0.8379 and MAE 7.454 / 7.564 / 7.459 years. The libraries differed by at most
#: 0.0010 (one test face) and 0.00012 years there.
SPLIT_NOISE = {"pixels+pca+svm": 0.0056, "hog6+lbp+svr": 0.062}
#: Training faces per fit, drawn from split 0's training part (3,977 faces).
N_TRAIN = 1000


@pytest.fixture(scope="module")
def real_faces(utkface):
    """The 5k subset's table, split 0's test rows and :data:`N_TRAIN` of its training rows (seeded)."""
    table = load_dataset(utkface).table.reset_index(drop=True)
    train, test = make_split(table, seed=0)
    picked = np.sort(np.random.default_rng(0).choice(train, N_TRAIN, replace=False))
    return table, picked, test


@pytest.mark.parametrize("name,task", [("pixels+pca+svm", "gender"), ("hog6+lbp+svr", "age")])
def test_onedal_matches_libsvm_on_real_faces_within_split_noise(real_faces, name, task):
    table, train, test = real_faces
    rows = np.concatenate([train, test])  # the features of the faces used, computed once for both libraries
    images = decode(table.iloc[rows], size=64, color=input_color(name) or "gray")
    features = np.asarray(feature_step(name, task).transform(images), dtype=np.float32)
    fit_x, test_x = features[: len(train)], features[len(train):]
    target = table[task].to_numpy()
    scores = {}
    for backend in ("libsvm", "onedal"):
        head = sb.use_backend(make_head(name, task, random_state=0), backend)
        assert sb.backend_of(head) == backend
        with threadpool_limits(limits=1):  # as the runner fits every classical unit
            head.fit(fit_x, target[train])
            out = predict_outputs(head, test_x, task)
        if task == "gender":
            scores[backend] = float(np.mean(out["gender"] == target[test]))
        else:
            scores[backend] = float(np.mean(np.abs(out["age"] - target[test])))
    assert abs(scores["onedal"] - scores["libsvm"]) <= SPLIT_NOISE[name], scores
