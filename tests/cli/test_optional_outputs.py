"""Issue 21.7: the optional paths run when their packages (the ``test`` extra pins them) are installed: parquet
fingerprints (pyarrow) and UMAP maps (umap-learn). UMAP's first call compiles numba code (~20-30 s): slow."""
from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from molssl.chem.serve.zoo import list_models
from molssl.cli.main import app

pytestmark = pytest.mark.skipif("molclr-gin-mix" not in {c.name for c in list_models()},
                                reason="the shipped encoder is not present")
MOLECULES = ["CCO", "c1ccccc1", "CC(=O)O", "CCN", "CCCl", "C1CCCCC1", "CC(C)O", "c1ccncc1", "CCOC(=O)C",
             "Oc1ccccc1", "CC(=O)Oc1ccccc1C(=O)O", "CN1CCC[C@H]1c1cccnc1"]


def test_fingerprints_as_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "fps.parquet"
    result = CliRunner().invoke(app, ["fingerprint", "--smiles", "CCO", "not_a_smiles", "c1ccccc1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    assert len(table) == 3 and table["smiles"].tolist() == ["CCO", "not_a_smiles", "c1ccccc1"]
    assert table["status"].tolist()[0] == "ok" and table["status"].tolist()[1].startswith("invalid")
    assert table["fp0"].notna().tolist() == [True, False, True]
    assert sum(c.startswith("fp") for c in table.columns) == 512


@pytest.mark.slow
def test_umap_map(tmp_path):
    pytest.importorskip("umap")
    source = tmp_path / "mols.csv"
    pd.DataFrame({"smiles": MOLECULES, "size": [len(s) for s in MOLECULES]}).to_csv(source, index=False)
    out = tmp_path / "map.png"
    result = CliRunner().invoke(app, ["plot", "map", str(source), "--color-by", "size", "--method", "umap",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
