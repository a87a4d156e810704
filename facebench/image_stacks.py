"""What every stateless transformer of image stacks tells scikit-learn about itself.

Shared by the hand-crafted features (:mod:`facebench.baselines`) and the features learned
elsewhere (:mod:`facebench.pretrained`), which may not import each other.
"""

from __future__ import annotations


class StackInput:
    """Mixin (left of ``BaseEstimator``): the tags of a stateless transformer of image stacks.

    It takes ``(n_images, height, width[, 3])`` stacks, needs no fit, and keeps float32.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


__all__ = ["StackInput"]
