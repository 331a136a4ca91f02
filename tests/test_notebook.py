"""The quick-start notebook runs top to bottom (needs the shipped models; nbclient, nbformat, ipykernel)."""
from pathlib import Path

import pytest

from molssl.chem.serve.zoo import list_models

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("ipykernel")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


@pytest.mark.skipif(not {"esol", "bbbp", "molclr-gin-mix"} <= {c.name for c in list_models()},
                    reason="shipped models not present")
def test_quickstart_notebook_runs(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "(29, 512)" in text and "cross-validated R2" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
