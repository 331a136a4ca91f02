"""molssl: self-supervised contrastive representation learning on molecules.

The public Python API is imported lazily so that ``import molssl`` stays cheap.
"""
from __future__ import annotations

__version__ = "0.1.0"
