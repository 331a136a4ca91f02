"""Self-supervised learning on images: contrastive (SimCLR, MoCo v2, BYOL), instance-level (NPID, PIRL,
Exemplar CNN), predictive (CPC), masked and inpainting (MAE, context encoder), colorization, and the
rotation, jigsaw and relative-position pretext tasks.

Submodules: ``data`` (MNIST / digits / image folders / SMILES files, batch sources), ``depictions``
(RDKit drawings of molecules with exact labels), ``augment`` (kornia views), ``encoders`` (small 2D/3D
CNNs), ``mae`` (a small ViT), one module per method family (``contrastive``, ``instance``, ``cpc``,
``inpainting``, ``colorization``, ``pretext`` with ``permutations``), ``methods`` (the registry),
``config`` (run configs), ``pretrain`` (runs on :func:`molssl.core.fit.fit`) and ``features`` (what
probes embed; scores from :mod:`molssl.core.probe`). The ``molssl vision`` commands live in
:mod:`molssl.cli.vision`. Importing this package loads nothing heavy.
"""
