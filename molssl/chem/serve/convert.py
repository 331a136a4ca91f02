"""Import of the MolCLR authors' pre-trained checkpoints (``ckpt/pretrained_{gin,gcn}/checkpoints/model.pth``).

Name mapping (MolCLR -> molssl ``MolecularEncoder``):

    x_embedding1/2                    -> x_embedding1/2 (chirality table padded from 3 to 4 rows, see below)
    gnns.{i}.mlp.{0,2}, gnns.{i}.edge_embedding1/2 (GIN)  -> unchanged
    gnns.{i}.weight, gnns.{i}.bias (GCN)                  -> unchanged
    gnns.{i}.edge_embedding1/2 (GCN, width 1)             -> gnns.{i}.bonds.edge_embedding1/2
    batch_norms.{i}.*, feat_lin.*     -> unchanged
    out_lin.{0,2}                     -> head.net.{0,2} (projection head)

MolCLR embeds 3 chirality tags (unspecified, CW, CCW); molssl has a 4th ("other"), whose row is
set to zeros, so such atoms get the type embedding only. MolCLR's GCN computes symmetric degree
weights but never applies them, so converted GCNs use ``EncoderConfig(gcn_normalize=False)``.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import Tensor

from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.data.featurize import NUM_CHIRALITY_TAGS
from molssl.chem.tasks.pretrain import ENCODER_FILE, save_encoder
from molssl.core.checkpoint import load_checkpoint
from molssl.errors import MolsslError

_GCN_BOND = re.compile(r"^gnns\.(\d+)\.edge_embedding([12])\.weight$")


def _strip_prefix(state: dict) -> dict:
    """Drop a ``module.`` prefix that DataParallel-saved checkpoints carry."""
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def molclr_encoder_config(state: dict[str, Tensor]) -> EncoderConfig:
    """Encoder hyperparameters read off the tensor shapes of a MolCLR state dict."""
    if "x_embedding1.weight" not in state or "feat_lin.weight" not in state:
        raise MolsslError("not a MolCLR GIN/GCN state dict: x_embedding1.weight or feat_lin.weight is missing")
    if "gnns.0.mlp.0.weight" in state:
        kind = "gin"
    elif "gnns.0.weight" in state:
        kind = "gcn"
    else:
        raise MolsslError("cannot tell GIN from GCN: neither gnns.0.mlp.0.weight nor gnns.0.weight is present")
    num_layers = len({k.split(".")[1] for k in state if k.startswith("batch_norms.")})
    feat_dim = state["feat_lin.weight"].shape[0]
    proj_dim = state["out_lin.2.weight"].shape[0] if "out_lin.2.weight" in state else feat_dim // 2
    return EncoderConfig(kind=kind, num_layers=num_layers, emb_dim=state["x_embedding1.weight"].shape[1],
                         feat_dim=feat_dim, proj_dim=proj_dim, gcn_normalize=False if kind == "gcn" else True)


def molclr_to_molssl(state: dict[str, Tensor]) -> tuple[EncoderConfig, dict[str, Tensor], list[str]]:
    """(config, state dict for :class:`MolecularEncoder`, notes) from a MolCLR state dict."""
    state = _strip_prefix(dict(state))
    config = molclr_encoder_config(state)
    notes: list[str] = []
    mapped: dict[str, Tensor] = {}
    for name, tensor in state.items():
        if name.startswith("pred_head."):
            continue  # a fine-tuned MolCLR model's task head is not part of the encoder
        if name.startswith("out_lin."):
            name = "head.net." + name[len("out_lin."):]
        elif config.kind == "gcn" and (match := _GCN_BOND.match(name)):
            name = f"gnns.{match.group(1)}.bonds.edge_embedding{match.group(2)}.weight"
        mapped[name] = tensor.detach().float() if tensor.is_floating_point() else tensor.detach()
    chirality = mapped["x_embedding2.weight"]
    if chirality.shape[0] < NUM_CHIRALITY_TAGS:
        pad = torch.zeros(NUM_CHIRALITY_TAGS - chirality.shape[0], chirality.shape[1])
        mapped["x_embedding2.weight"] = torch.cat([chirality, pad])
        notes.append(f"chirality embedding padded from {chirality.shape[0]} to {NUM_CHIRALITY_TAGS} rows with zeros "
                     "(tag 'other' gets no chirality contribution)")
    if config.kind == "gcn":
        notes.append("GCN converted with gcn_normalize=False: MolCLR's GCN never applies its degree normalization")
    if not any(k.startswith("head.net.") for k in mapped):
        notes.append("no out_lin (projection head) in the source: the projection head is randomly initialised")
    return config, mapped, notes


def convert_molclr(src: str | Path, dst: str | Path) -> tuple[Path, list[str]]:
    """Convert MolCLR ``model.pth`` into a molssl ``encoder.pt``; returns (written path, notes).

    ``dst`` ending in ``.pt`` is the file; anything else is a directory that receives ``encoder.pt``.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise MolsslError(f"no MolCLR checkpoint at {src}")
    state = load_checkpoint(src)  # never runs code from the file; one sentence when it is unsafe or unreadable
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise MolsslError(f"{src} holds a {type(state).__name__}, not a state dict")
    config, mapped, notes = molclr_to_molssl(state)
    encoder = MolecularEncoder(config)
    own = encoder.state_dict()
    missing = sorted(set(own) - set(mapped) - {k for k in own if k.startswith("head.")})
    unexpected = sorted(set(mapped) - set(own))
    if missing or unexpected:
        raise MolsslError(f"{src} does not match a MolCLR {config.kind.upper()} encoder: "
                          f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in mapped.items():
        if own[name].shape != tensor.shape:
            raise MolsslError(f"{src}: {name} has shape {tuple(tensor.shape)}, expected {tuple(own[name].shape)}")
    encoder.load_state_dict(mapped, strict=False)
    path = dst if dst.suffix == ".pt" else dst / ENCODER_FILE
    save_encoder(encoder, path, meta={"converted_from": str(src.resolve()), "source": "MolCLR (yuyangw/MolCLR)",
                                      "notes": notes})
    return path, notes
