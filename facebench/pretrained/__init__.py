"""Features learned elsewhere: dlib's 128-d face descriptor as a cached feature step (optional extra).

The third family beside the hand-crafted features of :mod:`facebench.baselines` and the
CNN learned here (:mod:`facebench.cnn`): a ResNet trained for face identity on about 3
million faces, frozen, whose 128 numbers per face feed the same heads (SVC, SVR, ridge,
logistic regression) as the hand-crafted features. :class:`DlibDescriptor` is the feature
step (stateless, cached on disk by image content and model files, embedded in parallel);
:func:`aligned_faces` shows what the network receives. It needs
``pip install 'facebench[pretrained]'``; :func:`available` and :func:`require` say whether
it is there.
"""

from facebench.pretrained.descriptor import (
    EXTRA_HINT,
    FACE_BOX,
    aligned_faces,
    available,
    embed_batch,
    model_digest,
    model_files,
    require,
)
from facebench.pretrained.embeddings import DlibDescriptor, EmbeddingCache, image_keys

#: The square side the family's face stacks are decoded at (the 150-pixel chip is cut from it).
INPUT_SIZE = 160

__all__ = [
    "EXTRA_HINT",
    "FACE_BOX",
    "INPUT_SIZE",
    "DlibDescriptor",
    "EmbeddingCache",
    "aligned_faces",
    "available",
    "embed_batch",
    "image_keys",
    "model_digest",
    "model_files",
    "require",
]
