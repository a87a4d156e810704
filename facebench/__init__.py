"""facebench: hand-crafted (HOG, LBP) against learned (CNN) face features, benchmarked.

The package follows the data flow of the design: ``data`` (scan, audit, decode,
split, synthetic faces) -> ``baselines`` / ``cnn`` (models) -> ``compare`` (the
benchmark runner and its run directory) -> ``reports`` (HTML from a run directory).
"""

__version__ = "0.2.0"
