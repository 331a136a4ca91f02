"""molssl: self-supervised contrastive representation learning on molecules.

The public Python API is imported lazily so that ``import molssl`` stays cheap.
"""
from __future__ import annotations

__version__ = "0.2.0"

_LAZY = {
    "fingerprint": "molssl.chem.serve.fingerprints",
    "MolecularFingerprint": "molssl.chem.serve.fingerprints",
    "load_model": "molssl.chem.serve.predict",
    "predict": "molssl.chem.serve.predict",
    "Predictor": "molssl.chem.serve.predict",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Import the public API on first use (``import molssl`` loads neither torch nor RDKit)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'molssl' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
