"""Issue 18.6: one huge molecule cannot exhaust memory. A 50k-atom molecule above ``--max-atoms`` (default 1000
heavy atoms) is an invalid row with the reason named, adding under 512 MiB to the imports; a large molecule allowed through is
featurized from a bond list, never a dense N x N matrix (10k atoms: 0.8 GB as float64, 50k: 20 GB). Measured in
a fresh process whose address space is capped, so a regression fails the test instead of swapping the machine.
(10k rather than 50k atoms on the allowed path only because RDKit's bond-by-index access makes it slow.)"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

LIMIT_BYTES = 1 << 30  # address-space scale of the test: the process runs capped at 6x this
GROWTH_BYTES = 512 << 20  # peak resident memory the work may add to what the imports took (a dense 10k x 10k
# float64 matrix alone is 763 MiB); imports are left out because their size is the machine's, not ours

MEASURE = """
import json, resource, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from molssl.chem.data.inputs import SmilesChunk
from molssl.chem.data.parallel import featurize_chunk
from molssl.chem.data.store import build_store
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
imported = peak()

huge = "C" * 50_000
guarded = featurize_chunk(SmilesChunk([0, 1], [1, 2], [huge, "CCO"]))
out = {"rejected": [r[3] for r in guarded.rejected], "kept_rows": guarded.rows.tolist()}
for featurizer in ("molclr", "rich"):
    allowed = featurize_chunk(SmilesChunk([0, 1], [1, 2], ["C" * 10_000, "CCO"]), featurizer=featurizer,
                              max_atoms=100_000)
    out[featurizer] = [int(n) for n in (allowed.graphs.atoms.shape[0], allowed.graphs.bonds.shape[0])]
path = sys.argv[2] + "/huge.smi"
open(path, "w").write("CCO\\n" + huge + "\\nc1ccccc1\\n")
store = build_store(path, cache_dir=sys.argv[2] + "/cache", workers=1, progress=False)
out["store"] = [len(store), store.rejected()]
out["imported"], out["maxrss"] = imported, peak()
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB and RLIMIT_AS as on Linux")
def test_a_50k_atom_molecule_costs_little_memory(tmp_path):
    run = subprocess.run([sys.executable, "-c", MEASURE, str(6 * LIMIT_BYTES), str(tmp_path)], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["kept_rows"] == [1] and len(out["rejected"]) == 1
    assert "50000 heavy atoms" in out["rejected"][0] and "--max-atoms" in out["rejected"][0]
    assert out["molclr"] == [10_003, 9_999 + 2]  # 10k chain + ethanol
    assert out["rich"][0] == 10_003
    count, rejected = out["store"]
    assert count == 2 and [(line, reason.split(",")[0]) for line, _smiles, reason in rejected] == \
        [(2, "50000 heavy atoms")]
    growth = out["maxrss"] - out["imported"]
    assert growth < GROWTH_BYTES, \
        f"peak memory {out['maxrss'] / 2**20:.0f} MiB, {growth / 2**20:.0f} MiB over the imports' {out['imported'] / 2**20:.0f}"
