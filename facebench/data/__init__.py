"""The data layer: scan and audit a dataset, decode and cache images, split, synthesise.

Entry points
------------
load_dataset(path) -> Dataset        a folder of UTKFace-named images or a CSV manifest
decode(dataset_or_paths, size=64, color="gray", cache_dir=None) -> uint8 stack
find_near_duplicates(dataset, max_bits, labels) -> the dataset with near-duplicate groups
make_split(table, seed, test_size, groups=None) -> (train_idx, test_idx)
subsample(table, train_idx, fraction, seed) -> nested stratified subset
synthesize(out_dir, n, seed) -> folder of synthetic UTKFace-named faces
"""

from .decoding import decode, decode_one, read_pixels, to_face_array
from .labels import (
    AGE_BANDS,
    GENDERS,
    RACES,
    LabelError,
    age_band,
    gender_name,
    parse_utkface_name,
    race_name,
    validate_labels,
)
from .neardup import find_near_duplicates
from .scan import Dataset, audit_to_json, check_image, load_dataset
from .split import make_split, run_splits, strata, subsample

__all__ = [
    "AGE_BANDS", "GENDERS", "RACES", "Dataset", "LabelError", "age_band", "audit_to_json",
    "check_image", "decode", "decode_one", "find_near_duplicates", "gender_name", "load_dataset", "make_split",
    "parse_utkface_name", "race_name", "read_pixels", "run_splits", "strata", "subsample", "synthesize", "to_face_array",
    "validate_labels",
]


def synthesize(out_dir, n: int = 2000, seed: int = 0, size: int = 128, n_jobs=None):
    """Write ``n`` synthetic faces under UTKFace names into ``out_dir`` and mark the folder.

    The marker file ``SYNTHETIC.txt`` makes every audit and report built from the
    folder say plainly that the faces are synthetic.
    """
    from pathlib import Path

    from .cache import atomic_write_text
    from .scan import SYNTHETIC_MARKER
    from .synth import write_synthetic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_synthetic(out_dir, n=n, seed=seed, size=size, n_jobs=n_jobs)
    atomic_write_text(
        out_dir / SYNTHETIC_MARKER,
        "These images were drawn by facebench's synthetic face generator "
        f"(n={n}, seed={seed}). They are cartoons, not photographs of people; "
        "results on them say nothing about real faces.\n",
    )
    return paths
