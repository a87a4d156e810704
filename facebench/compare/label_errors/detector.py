"""Suspected label errors: faces whose gender or age label the training part itself doubts.

UTKFace's labels were inferred, not verified. This module flags the labels that a model
trained on the *training part* of a split contradicts, honestly: nothing about a test
face (its features or its labels) decides what else is suspected.

How a trial's suspicions are decided (:func:`suspect_labels`)
-------------------------------------------------------------
Features: HOG + LBP + colour of each image (:func:`detector_features`, the features of
``hog+lbp+color+svm`` without their mirror half; any ``(n_images, n_features)`` array
works). A scaler and a PCA to 256 components, which learn no label, are fitted once on
the training rows' features (never a test row's) and shared by both tasks. The training
rows are cut into ``n_folds`` stratified folds (gender x age band); for each fold, on the
other folds' rows only (at most ``max_fit_rows`` of them, drawn with the seed, so the
cost stays bounded on the full UTKFace):

* gender: an RBF SVC (``C=3``, ``gamma="scale"``), whose decision values become
  probabilities by Platt scaling (a one-feature logistic regression fitted on the
  out-of-fold decision values of the training rows and their given labels);
* age: an RBF SVR (``C=30``, ``epsilon=1`` year, ``gamma="scale"``).

Each fold's models predict the held-out fold (out-of-fold predictions of every training
row) and every test row; a test row gets the mean over the fold models, so it is judged
only by models that never saw it or any other test row.

Gender (both parts): a face is suspected when its self-confidence, cleanlab's label
quality score ``cleanlab.rank.get_label_quality_scores(labels, pred_probs,
method="self_confidence")``, the probability of its *given* gender, is below
``gender_threshold`` (0.4 by default: the detector gives the other gender 60 % or more).
The probabilities are calibrated on the training part alone, so the cut means the same on
a small or a large dataset, and each face's verdict is its own (no test face affects
another's). ``gender_filter`` set to one of cleanlab's ``filter_by`` rules instead
(``"prune_by_noise_rate"``, ...) flags the training faces by
``cleanlab.filter.find_label_issues`` (confident learning: it estimates how many labels
of each class are wrong and flags that many) and a test face when the probability of its
given gender is at most the largest among the flagged training faces of that gender.

Why a threshold rather than the count confident learning estimates (measured with 100
gender labels flipped in the training part of the 5k subset, 3 splits,
``benchmarks/label_error_ensemble.py --cuts`` and ``benchmarks/label_errors.py``): the
estimated count stops at a self-confidence of 0.28-0.30 and recovers 75 / 81 / 74 % of
the flips; below 0.4 the detector recovers 81 / 87 / 81 %, with 48-55 % of the flags the
planting added being planted ones. The threshold was chosen on those 3 splits and checked
on 2 others (``benchmarks/RESULTS.md``).

Age (both parts): the residual ``r = given - predicted`` is suspected when

    |r| > max(age_k * s(b), age_min_years)

where ``b`` is the age band (``facebench.data.AGE_BANDS``) of the *predicted* age and
``s(b) = 1.4826 * median(|r_i - median(r)|)`` over the training rows predicted in that
band (their out-of-fold residuals; bands with fewer than 30 such rows use the scale of
all training rows). So the threshold grows with the age: a 6-year miss is a lot for a
toddler and nothing at 60. ``confidence`` is ``|r| / s(b)``, a robust z-score.

Why not cleanlab's regression support (``cleanlab.regression.learn.CleanLearning``):
it refits the model ``cv_n_folds`` x (1 + ``n_boot``) times (30 by default) to estimate
uncertainty, then more while it searches for the threshold; at about 2 s per SVR fit on
3,200 faces that is a minute or more on the 5k subset for age alone (an estimate, not
measured), against 5 fits here. ``cleanlab.regression.rank`` scores but draws no cut.
The residual rule needs only the out-of-fold predictions computed anyway.

Cost (``benchmarks/label_errors.py --side-by-side``, 2 busy cores, benchmarks/RESULTS.md): on
the 5k subset's 3,977 training faces, the SVMs are most of it (the scaler and PCA about a
tenth); oneDAL fits them 2.6x faster than libsvm on one thread, 3.6x with the folds in two
processes of one thread each, as a run fits them (libsvm's ran one after the other); at the
full UTKFace's size (23.7k rows) the fits are bounded by ``max_fit_rows``.

Entry points: :func:`suspect_labels` (one trial), :func:`suspect_labels_for_run` (every
trial of a run), :func:`facebench.compare.planning.drop_suspected` (``data.label_errors = "drop-train"``),
:mod:`facebench.compare.label_errors.with_without` (every model's test metrics with and without the
suspected test faces). The run directory's files: :mod:`facebench.rundir.label_files`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from facebench.baselines.svm_backend import resolve as resolve_backend
from facebench.baselines.svm_backend import use_backend
from facebench.data import age_band
from facebench.compare.planning.config import DETECTOR_MODELS, LABEL_DETECTORS  # noqa: F401  (the detector choices)
from facebench.vocab import AGE_MAX, AGE_MIN
from facebench.rundir.label_files import ISSUE_COLUMNS

#: The registry model whose features the detector uses (HOG + LBP + colour on RGB).
DETECTOR_MODEL = DETECTOR_MODELS["hog+lbp+color"]
#: A face is suspected when the detector's probability of its given gender is below this.
GENDER_THRESHOLD = 0.4


#: How each detector's PCA is named ("auto": dlib128 where the pretrained extra is installed, else hog+lbp+color).
_REDUCED = {"hog+lbp+color": "pca256", "dlib128": "pca128"}


def detector_choice(config: dict) -> str:
    """The detector's features for a run: ``data.label_detector``, with "auto" resolved."""
    choice = config["data"].get("label_detector", "auto")
    if choice == "auto":
        from facebench.pretrained import descriptor

        return "dlib128" if descriptor.available() else "hog+lbp+color"
    return choice


def detector_model(choice: str) -> str:
    """The registry model whose features a detector (``hog+lbp+color`` or ``dlib128``) uses."""
    return DETECTOR_MODELS[choice]


def gender_detector(gender_filter: str = "threshold", threshold: float = GENDER_THRESHOLD,
                    features: str = "hog+lbp+color") -> str:
    """The gender detector's name as the ``detector`` column gives it: features, model and rule."""
    rule = f"self-confidence < {threshold:g}" if gender_filter == "threshold" else f"cleanlab {gender_filter}"
    return f"{features} {_REDUCED[features]} svc, {rule}"


def age_detector(features: str = "hog+lbp+color") -> str:
    """The age detector's name as the ``detector`` column gives it."""
    return f"{features} {_REDUCED[features]} svr, residual"


GENDER_DETECTOR = gender_detector()
AGE_DETECTOR = age_detector()
PCA_COMPONENTS = 256
#: On the 5k subset, C in {1, 3, 10} and 128 / 256 / 400 components recovered planted gender
#: flips alike (recall 75-77 % with cleanlab's default filter): the detector's own error
#: rate, not its settings, bounds what it finds.
SVC_C = 3.0
SVR_C = 30.0
SVR_EPSILON = 1.0
#: Robust-scale bands with fewer training rows than this use the scale of all rows.
MIN_BAND_ROWS = 30
_MAD_TO_SD = 1.4826


def detector_features(table: pd.DataFrame, config: dict) -> np.ndarray:
    """HOG + LBP + colour features of every image of ``table`` (the detector's input).

    The features of :data:`DETECTOR_MODEL`, computed (or read from the feature cache) by
    :func:`facebench.compare.running.unit_bodies.prepare_features` at ``config["features"]["image_size"]``;
    only their first half, the faces themselves, not their mirror images.

    Returns
    -------
    features : ndarray of shape (len(table), n_features), float32
    """
    from facebench.baselines import feature_step
    from facebench.baselines.transformers import HFlipPairs
    from facebench.compare.planning.plan import classical_spec
    from facebench.compare.running.unit_bodies import prepare_features

    model = detector_model(detector_choice(config))
    spec = classical_spec(config, model, ("gender",))
    info = prepare_features(table, [spec], {"n_jobs": config["n_jobs"], "dask": config["dask"]})[model]
    features = np.load(info["file"], mmap_mode="r")
    if isinstance(feature_step(model, "gender"), HFlipPairs):  # [face, mirror image]
        features = features[:, : features.shape[1] // 2]
    return np.asarray(features)


# --------------------------------------------------------------------------- one trial


def suspect_labels(features, table: pd.DataFrame, train_rows, *, seed: int, test_rows=None, trial: int = 0,
                   n_folds: int = 5, age_k: float = 3.0, age_min_years: float = 5.0,
                   gender_filter: str = "threshold", gender_threshold: float = GENDER_THRESHOLD,
                   max_fit_rows: int = 6000,
                   tasks=("gender", "age"), n_jobs=1, svm_backend: str = "auto",
                   features_name: str = "hog+lbp+color") -> pd.DataFrame:
    """Faces of one split whose gender or age label the training part doubts.

    Parameters
    ----------
    features : ndarray of shape (n_images, n_features)
        One row per row of ``table`` (e.g. :func:`detector_features`).
    table : DataFrame
        ``image_id``, ``path``, ``age``, ``gender``, one row per image.
    train_rows : array of int
        Positions of the training part; only these decide what is suspected.
    seed : int
        Seeds the folds, the row cap and the PCA.
    test_rows : array of int, optional
        Positions of the test part, judged by the models of the training folds.
    trial : int
        Written into the ``trial`` column.
    n_folds : int
        Cross-validation folds on the training rows.
    age_k, age_min_years : float
        The age rule: suspected when ``|given - predicted| > max(age_k * s(band),
        age_min_years)`` (module docstring).
    gender_filter : str
        ``"threshold"`` (suspected: self-confidence below ``gender_threshold``), or a
        ``filter_by`` of ``cleanlab.filter.find_label_issues`` (module docstring).
    gender_threshold : float
        The self-confidence cut of ``"threshold"``, in (0, 1).
    max_fit_rows : int
        Rows the PCA and each fold's models are fitted on at most (seeded sample).
    tasks : tuple of str
        ``"gender"``, ``"age"`` or both.
    n_jobs : int
        Folds fitted in parallel (joblib processes; a run gives its ``n_jobs``), each on one thread.
    svm_backend : {"auto", "onedal", "libsvm"}
        The library of the SVC and SVR (:mod:`facebench.baselines.svm_backend`).
    features_name : {"hog+lbp+color", "dlib128"}
        What ``features`` are, for the ``detector`` column.

    Returns
    -------
    issues : DataFrame
        Columns :data:`facebench.rundir.label_files.ISSUE_COLUMNS` (described in
        :mod:`facebench.rundir.label_files`), most confident first within task and part.
    """
    features = np.asarray(features)
    train = np.asarray(train_rows, dtype=np.int64)
    test = np.asarray(test_rows if test_rows is not None else [], dtype=np.int64)
    if features.ndim != 2 or len(features) != len(table):
        raise ValueError(f"features: expected one row per table row ({len(table)}), got shape {features.shape}")
    if gender_filter == "threshold" and not 0 < gender_threshold < 1:
        raise ValueError(f"gender_threshold={gender_threshold!r}: expected a probability in (0, 1)")
    unknown = set(tasks) - {"gender", "age"}
    if unknown:
        raise ValueError(f"tasks={tasks!r}: expected 'gender' and/or 'age'")
    gender = table["gender"].to_numpy().astype(np.int64)
    age = table["age"].to_numpy().astype(float)
    do_gender = "gender" in tasks and len(np.unique(gender[train])) == 2
    do_age = "age" in tasks
    pred = predict_out_of_fold(features, table, train, test, seed=seed, n_folds=n_folds, max_fit_rows=max_fit_rows,
                               gender=do_gender, age=do_age, n_jobs=n_jobs, svm_backend=svm_backend)
    frames = []
    if do_gender:
        frames.append(_gender_issues(table, train, test, gender[train], pred["gender"], pred["gender_test"],
                                     gender_filter, gender_threshold, trial, features_name))
    if do_age:
        frames.append(_age_issues(table, train, test, age, pred["age"], pred["age_test"], age_k, age_min_years, trial,
                                  features_name))
    if not frames:
        return empty_issues()
    return pd.concat(frames, ignore_index=True).assign(agree="")[ISSUE_COLUMNS]


def empty_issues() -> pd.DataFrame:
    """An issues table with no rows (and the right columns)."""
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("part", "image_id", "path", "task", "detector", "agree")
                                      else float if c == "confidence" else np.int64) for c in ISSUE_COLUMNS})


def _folds(table, train, n_folds, seed):
    """Stratified folds over the training rows: gender x age band where every stratum can fill them."""
    if n_folds < 2:
        raise ValueError(f"n_folds={n_folds}: need at least 2 folds")
    sub = table.iloc[train]
    strata = sub["gender"].astype(str).to_numpy() + "|" + np.asarray(age_band(sub["age"]), dtype=str)
    if pd.Series(strata).value_counts().min() < n_folds:
        strata = sub["gender"].astype(str).to_numpy()
    if pd.Series(strata).value_counts().min() < n_folds:
        strata = np.zeros(len(train), dtype=int)
    if len(train) < 2 * n_folds:
        raise ValueError(f"{len(train)} training rows: too few for {n_folds}-fold cross-validation")
    if "near_group" in sub and sub["near_group"].nunique() < len(sub):
        # near-duplicate photos stay in one fold, so no face is judged by a model that saw its twin
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(cv.split(np.zeros(len(train)), strata, groups=sub["near_group"].to_numpy()))
    cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(train)), strata))


def predict_out_of_fold(features, table, train, test, *, seed, n_folds=5, max_fit_rows=6000, gender=True, age=True,
                        n_jobs=1, svm_backend="auto") -> dict:
    """Out-of-fold predictions of the training rows and fold-averaged predictions of the test rows.

    Returns ``{"gender", "gender_test"}`` (SVC decision values, > 0: female) and
    ``{"age", "age_test"}`` (SVR ages), each aligned with ``train`` / ``test``.

    The scaler and the PCA learn no label: they are fitted once on the training
    rows' features (at most ``max_fit_rows`` of them), never on a test row, and
    shared by every fold and both tasks. The labelled models are then fitted per
    fold, in a loop of its own rather than ``cross_val_predict``, so that each fold's
    models also judge the test rows without another fit on the whole training part.
    """
    features = np.asarray(features)
    train = np.asarray(train, dtype=np.int64)
    test = np.asarray(test, dtype=np.int64)
    folds = _folds(table, train, n_folds, seed)
    fit_on = _cap(train, max_fit_rows, seed)
    n_comp = int(min(PCA_COMPONENTS, len(fit_on) - 1, features.shape[1]))
    # 3 power iterations instead of 7: 40 % less time on the 5k subset, and the 256 components
    # explain 74.1 % of the variance instead of 74.4 %
    reduce = make_pipeline(StandardScaler(), PCA(n_comp, svd_solver="randomized", iterated_power=3, random_state=seed))
    reduce.fit(np.asarray(features[fit_on], dtype=np.float32))
    # float32 into the SVMs: oneDAL then fits and predicts in float32 (faster, the same suspects and
    # planted-flip recall: benchmarks/RESULTS.md); libsvm converts to float64 as it always did
    z_train = reduce.transform(np.asarray(features[train], dtype=np.float32))
    z_test = (reduce.transform(np.asarray(features[test], dtype=np.float32)) if len(test)
              else np.zeros((0, n_comp), dtype=np.float32))
    y_gender = table["gender"].to_numpy().astype(np.int64)[train]
    y_age = table["age"].to_numpy().astype(float)[train]
    backend = resolve_backend(svm_backend)
    jobs = (delayed(_fit_fold)(z_train, z_test, _cap(fit, max_fit_rows, seed + i), held, y_gender, y_age, gender, age,
                               backend) for i, (fit, held) in enumerate(folds))
    results = Parallel(n_jobs=n_jobs)(jobs)
    out = {}
    for task, wanted in (("gender", gender), ("age", age)):
        if not wanted:
            continue
        out[task] = np.zeros(len(train))
        out[task + "_test"] = np.zeros(len(test))
        for (fit, held), res in zip(folds, results):
            out[task][held] = res[task]
            out[task + "_test"] += res[task + "_test"] / len(folds)
    return out


def _cap(rows, max_rows, seed):
    """``rows``, or a seeded sorted sample of ``max_rows`` of them."""
    rows = np.asarray(rows)
    if len(rows) <= max_rows:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))


def _fit_fold(z_train, z_test, fit, held, y_gender, y_age, gender, age, backend="libsvm"):
    """One fold: fit on the training positions ``fit``, predict the held-out positions and the test rows.

    On one thread, as every classical unit (oneDAL's results depend in the last bits on the
    thread count): the suspects are the same whether the folds run one after the other or
    in parallel processes, on any number of cores.
    """
    from facebench.compare.running.unit_bodies import classical_threads

    with classical_threads():
        return _fit_fold_here(z_train, z_test, fit, held, y_gender, y_age, gender, age, backend)


def _fit_fold_here(z_train, z_test, fit, held, y_gender, y_age, gender, age, backend):
    from facebench.baselines.building import svm_cache_mb

    out = {}
    cache = svm_cache_mb()
    if gender:
        svc = use_backend(SVC(C=SVC_C, kernel="rbf", gamma="scale", cache_size=cache), backend)
        svc.fit(z_train[fit], y_gender[fit])
        sign = 1.0 if svc.classes_[1] == 1 else -1.0  # decision > 0: female
        out["gender"] = sign * svc.decision_function(z_train[held])
        out["gender_test"] = sign * svc.decision_function(z_test) if len(z_test) else np.zeros(0)
    if age:
        svr = use_backend(SVR(C=SVR_C, epsilon=SVR_EPSILON, kernel="rbf", gamma="scale", cache_size=cache), backend)
        svr.fit(z_train[fit], y_age[fit])
        out["age"] = svr.predict(z_train[held])
        out["age_test"] = svr.predict(z_test) if len(z_test) else np.zeros(0)
    return out


def _gender_issues(table, train, test, y, oof_d, test_d, gender_filter, threshold, trial, features="hog+lbp+color"):
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    platt = LogisticRegression(C=1e4).fit(oof_d.reshape(-1, 1), y)
    p_train = platt.predict_proba(oof_d.reshape(-1, 1))  # columns: male, female
    p_given_train = get_label_quality_scores(y, p_train, method="self_confidence")
    if gender_filter == "threshold":
        flagged = p_given_train < threshold
    else:
        flagged = find_label_issues(y, p_train, filter_by=gender_filter)
    name = gender_detector(gender_filter, threshold, features)
    rows = [_gender_rows(table, train[flagged], y[flagged], 1.0 - p_given_train[flagged], "train", trial, name)]
    if len(test):
        y_test = table["gender"].to_numpy().astype(np.int64)[test]
        p_test = platt.predict_proba(test_d.reshape(-1, 1))
        p_given_test = get_label_quality_scores(y_test, p_test, method="self_confidence")
        if gender_filter == "threshold":
            doubt = p_given_test < threshold
        else:
            cut = {c: (p_given_train[flagged & (y == c)].max() if (flagged & (y == c)).any() else -1.0) for c in (0, 1)}
            doubt = p_given_test <= np.array([cut[c] for c in y_test])
        rows.append(_gender_rows(table, test[doubt], y_test[doubt], 1.0 - p_given_test[doubt], "test", trial, name))
    return pd.concat(rows, ignore_index=True)


def _gender_rows(table, rows, given, confidence, part, trial, detector):
    frame = pd.DataFrame({"trial": int(trial), "part": part, "image_id": table["image_id"].to_numpy()[rows],
                          "path": table["path"].to_numpy()[rows], "task": "gender", "given": given.astype(np.int64),
                          "suggested": (1 - given).astype(np.int64), "confidence": np.round(confidence, 5),
                          "detector": detector})
    return frame.sort_values("confidence", ascending=False, kind="stable")


def age_scales(predicted, residuals) -> dict:
    """Robust scale (1.4826 x MAD) of the residuals per age band of the prediction; key ``None``: all rows."""
    predicted, residuals = np.asarray(predicted, float), np.asarray(residuals, float)

    def mad(r):
        return max(_MAD_TO_SD * float(np.median(np.abs(r - np.median(r)))), 1e-6)

    scales = {None: mad(residuals)}
    bands = np.asarray(age_band(np.clip(np.round(predicted), 0, None).astype(int)), dtype=str)
    for band in np.unique(bands):
        members = bands == band
        if members.sum() >= MIN_BAND_ROWS:
            scales[band] = mad(residuals[members])
    return scales


def _scale_of(scales, predicted):
    bands = np.asarray(age_band(np.clip(np.round(predicted), 0, None).astype(int)), dtype=str)
    return np.array([scales.get(b, scales[None]) for b in bands], dtype=float)


def _age_issues(table, train, test, age, oof_age, test_age, k, min_years, trial, features="hog+lbp+color"):
    scales = age_scales(oof_age, age[train] - oof_age)
    rows = []
    for part, idx, pred in (("train", train, oof_age), ("test", test, test_age)):
        if not len(idx):
            continue
        pred = np.clip(pred, AGE_MIN, AGE_MAX)
        resid = age[idx] - pred
        scale = _scale_of(scales, pred)
        doubt = np.abs(resid) > np.maximum(k * scale, min_years)
        sel = idx[doubt]
        frame = pd.DataFrame({"trial": int(trial), "part": part, "image_id": table["image_id"].to_numpy()[sel],
                              "path": table["path"].to_numpy()[sel], "task": "age",
                              "given": age[sel].astype(np.int64), "suggested": np.round(pred[doubt]).astype(np.int64),
                              "confidence": np.round(np.abs(resid[doubt]) / scale[doubt], 3), "detector": age_detector(features)})
        rows.append(frame.sort_values("confidence", ascending=False, kind="stable"))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------- a run


def rules_from_config(config: dict) -> dict:
    """The detector's cuts from a run config (``data.label_*``), as :func:`suspect_labels` takes them."""
    d = config["data"]
    return {"gender_threshold": float(d["label_gender_threshold"]), "age_k": float(d["label_age_k"]),
            "age_min_years": float(d["label_age_min_years"]),
            "svm_backend": resolve_backend(config.get("svm_backend", "auto")), "features_name": detector_choice(config)}


def detector_name(config: dict) -> str:
    """The detectors and their cuts as ``run.json`` records them: other cuts judge the trials again."""
    rules = rules_from_config(config)
    # libsvm fitted the detector before the key existed: named only when another library fits it (oneDAL
    # in float32 since its inputs stopped being converted to float64: earlier suspects are judged again)
    fitted_by = "" if rules["svm_backend"] == "libsvm" else f"; SVMs by {rules['svm_backend']} in float32"
    return (f"{gender_detector('threshold', rules['gender_threshold'], rules['features_name'])}; "
            f"{age_detector(rules['features_name'])} > max({rules['age_k']:g} sd, {rules['age_min_years']:g} years){fitted_by}")


def suspect_labels_for_run(features, table: pd.DataFrame, splits: dict, *, seed: int, log=None,
                           **options) -> pd.DataFrame:
    """:func:`suspect_labels` for every trial of a run, as one table (for ``label_issues.csv``).

    Parameters
    ----------
    features : ndarray of shape (n_images, n_features)
        One row per row of ``table`` (:func:`detector_features`).
    table : DataFrame
        The run's table (``image_id``, ``path``, ``age``, ``gender``).
    splits : dict of int to (train_rows, test_rows)
        As the runner builds them (``make_split`` per trial).
    seed : int
        The run's seed; trial ``t`` uses ``seed + t``.
    log : callable, optional
        Called with one line per trial (counts and seconds).
    **options
        Passed to :func:`suspect_labels` (``n_folds``, ``age_k``, ``n_jobs``...).

    Returns
    -------
    issues : DataFrame
        Columns :data:`facebench.rundir.label_files.ISSUE_COLUMNS`; write it with
        :func:`facebench.rundir.label_files.write_label_issues`.
    """
    frames = []
    for trial, (train, test) in sorted(splits.items()):
        started = time.perf_counter()
        issues = suspect_labels(features, table, train, test_rows=test, seed=seed + int(trial), trial=int(trial),
                                **options)
        if log is not None:
            counts = issues.groupby(["task", "part"]).size().to_dict()
            log(f"label errors, trial {trial}: " + ", ".join(f"{t} {p} {n}" for (t, p), n in sorted(counts.items()))
                + f" suspected ({time.perf_counter() - started:.1f} s)")
        frames.append(issues)
    return pd.concat(frames, ignore_index=True) if frames else empty_issues()


__all__ = ["AGE_DETECTOR", "DETECTOR_MODEL", "DETECTOR_MODELS", "GENDER_DETECTOR", "LABEL_DETECTORS", "age_detector",
           "detector_choice", "detector_model", "age_scales", "detector_features",
           "detector_name", "empty_issues", "gender_detector", "rules_from_config", "suspect_labels",
           "suspect_labels_for_run"]
