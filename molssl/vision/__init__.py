"""Self-supervised learning on images: SimCLR, MoCo v2, BYOL and the rotation, jigsaw and context pretext tasks.

Submodules: ``data`` (MNIST / digits / image folders, batch sources), ``augment`` (kornia views),
``encoders`` (small 2D/3D CNNs), ``contrastive`` (SimCLR, MoCo, BYOL), ``pretext`` and ``permutations``
(rotation, jigsaw, relative position), ``training`` (the core Trainer wiring), ``pretrain`` (method
registry and runs), ``probe`` (linear / k-NN evaluation) and ``cli`` (the ``molssl vision`` commands).
Importing this package loads nothing heavy.
"""
