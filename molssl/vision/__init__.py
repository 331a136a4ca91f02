"""Self-supervised learning on images: SimCLR, MoCo v2, BYOL and the rotation, jigsaw and context pretext tasks.

Submodules: ``data`` (MNIST / digits / image folders, batch sources), ``augment`` (kornia views),
``encoders`` (small CNNs), ``contrastive`` (SimCLR, MoCo, BYOL), ``pretext`` (rotation, jigsaw,
relative position), ``pretrain`` (method registry and training runs), ``probe`` (linear / k-NN
evaluation) and ``cli`` (the ``molssl vision`` commands). Importing this package loads nothing heavy.
"""
