"""molssl: self-supervised contrastive representation learning on molecules.

The public Python API is imported lazily so that ``import molssl`` stays cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "fingerprint": "molssl.chem.fingerprints",
    "MolecularFingerprint": "molssl.chem.fingerprints",
    "load_model": "molssl.chem.predict",
    "predict": "molssl.chem.predict",
    "Predictor": "molssl.chem.predict",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Import the public API on first use (``import molssl`` loads neither torch nor RDKit)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'molssl' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
