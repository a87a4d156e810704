"""The pretrained family on real faces: its models over several splits, and the embedding rate.

Models: every ``dlib128+*`` registry model on ``facebench.data.make_split(seed)`` for each
``--seeds`` value, on the descriptors of the whole folder (computed once, then read from
the embedding cache). One JSON line per split and model: accuracy / AUC or MAE, and the
head's fit and predict seconds (the embeddings are computed before, and timed apart)::

    python benchmarks/pretrained_models.py --data ../shared/data/utkface-5k --seeds 0 1 2 [--svm-backend onedal]
        [--runner tensorflow | dlib | both]

The rate (``--rate N``): on N faces of the folder, in this one process, the milliseconds per
face of each stage, wall clock and CPU time of this process (``_cpu_ms``, what a core spends
whatever else runs beside it; a worker's CPU is not counted): landmarks and chip, dlib's
network one chip at a time and on batches of 32 and of 128, the same network run by
TensorFlow from dlib's weights (``tensorflow_*``, with the largest difference from dlib's
descriptors), a first pass through :class:`DlibDescriptor` in this process and in two worker
processes, and the seconds of a second pass that finds every face in the cache::

    python benchmarks/pretrained_models.py --data ../shared/data/utkface-5k --rate 64
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time

import numpy as np
from sklearn.metrics import roc_auc_score


def dlib_runner_descriptors(images):
    """The descriptors by dlib's own runner, cached in the folder it used (``dlib128-<model>-fixed``)."""
    from facebench.pretrained import embeddings
    from facebench.pretrained.descriptor import embed_batch_dlib

    class DlibRunner(embeddings.DlibDescriptor):
        def transform(self, X):
            saved_cache, saved_embed = embeddings.EmbeddingCache, embeddings.embed_batch

            class Folder(saved_cache):
                def __init__(self, root=None, box="fixed", batch_size=1):
                    super().__init__(root, box, batch_size)
                    self.folder = self.folder.with_name(self.folder.name.split("-tf")[0])

            embeddings.EmbeddingCache, embeddings.embed_batch = Folder, embed_batch_dlib
            try:
                return super().transform(X)
            finally:
                embeddings.EmbeddingCache, embeddings.embed_batch = saved_cache, saved_embed

    return DlibRunner(batch_size=32).transform(images)


def models_over_splits(dataset, seeds, svm_backend="libsvm", runner="tensorflow"):
    from facebench.baselines import list_all, make_head, predict_outputs
    from facebench.baselines.svm_backend import use_backend
    from facebench.data import decode, make_split
    from facebench.pretrained import INPUT_SIZE, DlibDescriptor

    table = dataset.table
    images = decode(dataset, size=INPUT_SIZE, color="rgb")
    start = time.perf_counter()
    features = DlibDescriptor().transform(images) if runner == "tensorflow" else dlib_runner_descriptors(images)
    embed_s = time.perf_counter() - start
    head = {"faces": len(table), "runner": runner, "embedding_s": round(embed_s, 2)}
    if runner == "both":  # the two runners' descriptors of every face, then the heads on dlib's
        ported = DlibDescriptor().transform(images)
        head |= {"max_abs_difference": float(np.abs(ported - features).max()),
                 "max_l2_distance": float(np.linalg.norm(ported - features, axis=1).max())}
    print(json.dumps(head), flush=True)
    labels = {"age": table["age"].to_numpy(), "gender": table["gender"].to_numpy()}
    names = [n for n in list_all() if n.startswith("dlib128+")]
    for seed in seeds:
        train, test = make_split(table, seed=seed)
        for name in names:
            task = "gender" if name.endswith(("svm", "logreg")) else "age"
            y = labels[task]
            start = time.perf_counter()
            head = use_backend(make_head(name, task, random_state=seed, n_jobs=1), svm_backend).fit(features[train], y[train])
            fit_s = time.perf_counter() - start
            start = time.perf_counter()
            out = predict_outputs(head, features[test], task)
            predict_s = time.perf_counter() - start
            row = {"seed": seed, "model": name, "task": task, "runner": runner, "svm_backend": svm_backend,
                   "n_train": len(train), "n_test": len(test),
                   "fit_s": round(fit_s, 2), "predict_s": round(predict_s, 3)}
            if task == "gender":
                row |= {"accuracy": round(float(np.mean(out["gender"] == y[test])) * 100, 2),
                        "roc_auc": round(float(roc_auc_score(y[test], out["p_female"])), 4)}
            else:
                row["mae"] = round(float(np.mean(np.abs(out["age"] - y[test]))), 3)
            print(json.dumps(row), flush=True)


def rate(dataset, n):
    from facebench.data import decode
    from facebench.pretrained import INPUT_SIZE, DlibDescriptor, aligned_faces, model_files
    from facebench.pretrained.descriptor import _dlib_network
    from facebench.pretrained.resnet import descriptors

    images = np.asarray(decode(dataset.table.iloc[:n], size=INPUT_SIZE, color="rgb"))
    network = _dlib_network()
    out = {"faces": n, "load_average": round(os.getloadavg()[0], 1)}

    def timed(key, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        out[f"{key}_ms"] = round((time.perf_counter() - wall) / n * 1000, 1)
        out[f"{key}_cpu_ms"] = round((time.process_time() - cpu) / n * 1000, 1)
        return result

    chips = timed("align", lambda: aligned_faces(images)["chips"])
    single = timed("single", lambda: np.asarray([np.asarray(network.compute_face_descriptor(c)) for c in chips]))
    for batch in (32, 128):
        batched = timed(f"batch{batch}", lambda: np.concatenate([
            np.asarray([np.asarray(v) for v in network.compute_face_descriptor(list(chips[i:i + batch]))])
            for i in range(0, n, batch)]))
        out[f"batch{batch}_max_diff"] = float(np.abs(batched - single).max())
    # the same network run by TensorFlow from dlib's weights (the first call reads and traces it)
    path = model_files()["descriptor"]
    start = time.perf_counter()
    descriptors(chips[:1], path)
    out["tensorflow_first_call_s"] = round(time.perf_counter() - start, 2)
    for batch in (1, 32):  # 1: what DlibDescriptor runs (a face's numbers its own); 32: batched
        ported = timed(f"tensorflow_batch{batch}", lambda: descriptors(chips, path, batch_size=batch))
        out[f"tensorflow_batch{batch}_max_diff"] = float(np.abs(ported - single).max())
    for n_jobs in (1, 2):  # in this process (TensorFlow's threads), then in two worker processes
        with tempfile.TemporaryDirectory() as cache:
            os.environ["FACEBENCH_CACHE"] = cache
            step = DlibDescriptor(n_jobs=n_jobs)
            first = timed(f"first_pass_jobs{n_jobs}", lambda: step.transform(images))
            out[f"first_pass_jobs{n_jobs}_max_diff"] = float(np.abs(first - single).max())
            start = time.perf_counter()
            second = step.transform(images)
            out["cached_pass_s"] = round(time.perf_counter() - start, 3)
            out["cached_equal"] = bool(np.array_equal(first, second))
    print(json.dumps(out), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of UTKFace-named faces")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split seeds (default: 0 1 2)")
    parser.add_argument("--rate", type=int, default=0, help="measure the embedding rate on this many faces instead")
    parser.add_argument("--svm-backend", default="libsvm", choices=["libsvm", "onedal"],
                        help="the library of the RBF SVC / SVR heads (default: %(default)s)")
    parser.add_argument("--runner", default="tensorflow", choices=["tensorflow", "dlib", "both"],
                        help="who runs the network: TensorFlow from dlib's weights (facebench's), dlib's own "
                             "(cached apart), or both (their difference, then the heads on dlib's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from facebench.data import load_dataset
    from facebench.pretrained import require

    require()
    dataset = load_dataset(args.data)
    if args.rate:
        rate(dataset, args.rate)
    else:
        models_over_splits(dataset, args.seeds, args.svm_backend, args.runner)


if __name__ == "__main__":
    main()
