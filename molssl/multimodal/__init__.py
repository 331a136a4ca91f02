"""Image-text contrastive learning on molecules: ConVIRT (Zhang et al. 2020) between RDKit depictions and SMILES.

Submodules: ``text`` (SMILES characters, randomized SMILES, a character-level CNN encoder), ``data``
(paired depictions and SMILES, the batch source), ``convirt`` (the training module), ``pretrain``
(run configs, runs on :func:`molssl.core.fit.fit`, probes and retrieval). The ``molssl multimodal``
commands live in :mod:`molssl.cli.multimodal`. Importing this package loads nothing heavy.
"""
