"""Modality-agnostic contrastive core: losses, heads, momentum encoders, queues, trainer."""
from molssl.core.heads import MLPHead, PredictionHead, ProjectionHead
from molssl.core.losses import NTXentLoss, byol_loss, info_nce_with_queue, multi_positive_nt_xent, nt_xent
from molssl.core.momentum import MemoryQueue, MomentumEncoder, ema_update

__all__ = [
    "MLPHead",
    "ProjectionHead",
    "PredictionHead",
    "NTXentLoss",
    "nt_xent",
    "multi_positive_nt_xent",
    "info_nce_with_queue",
    "byol_loss",
    "MemoryQueue",
    "MomentumEncoder",
    "ema_update",
]
