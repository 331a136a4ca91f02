"""Self-supervised learning on video: CVRL (two clips of one video, NT-Xent) and shuffle-and-learn frame-order verification.

Submodules: ``data`` (moving-digit videos from real MNIST digits, video/frame folders), ``augment``
(temporally consistent kornia augmentation, CVRL clip sampling), ``pretext`` (frame-order verification),
``pretrain`` (run configs, runs on :func:`molssl.core.fit.fit`, probes); the ``molssl video`` commands live in
:mod:`molssl.cli.video`. Importing this package loads nothing heavy.
"""
