import json

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from molssl.chem.serve import plots as plot
from molssl.chem.nn.encoders import EncoderConfig, MolecularEncoder
from molssl.chem.tasks.finetune import FinetuneConfig, run_finetune
from molssl.cli.main import app
from molssl.chem.serve.loading import save_encoder
from molssl.errors import MolsslError

TINY = EncoderConfig(num_layers=2, emb_dim=16, feat_dim=16, proj_dim=8)
RINGS = ["c1ccccc1", "C1CCCCC1", "c1ccncc1", "C1CCOC1", "c1ccsc1", "C1CC1", "C1CCC1", "c1ccoc1", "C1CCNCC1",
         "C1CCCC1"]
CHAINS = ["C", "CC", "CCC", "OC", "NC", "ClC", "FC", "OCC"]


def _png_shape(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(path).shape


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A classification and a regression fine-tuning run (tiny encoder, 1 epoch, 2 seeds, scaffold split)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("plot")
    smiles = [chain + ring for ring in RINGS for chain in CHAINS]
    csv = folder / "mols.csv"
    pd.DataFrame({"smiles": smiles, "n": [len(s) / 4 for s in smiles],
                  "o": [float("O" in s or "o" in s) for s in smiles]}).to_csv(csv, index=False)
    out = {}
    for task, target in (("regression", "n"), ("classification", "o")):
        out[task] = folder / task
        run_finetune(FinetuneConfig(out=str(out[task]), csv=str(csv), targets=[target], task=task, split="scaffold", pretrained="none",
                                    seeds=[0, 1], epochs=1, batch_size=16, encoder=TINY, threads=1,
                                    cache_dir=str(folder / "cache"), progress=False), log=lambda _m: None)
    out["csv"] = csv
    return out


def test_pretrain_curves(tmp_path):
    run = tmp_path / "pre"
    run.mkdir()
    records = [{"step": s, "epoch": 0, "loss": 4.0 / s, "lr": 1e-3} for s in range(10, 60, 10)]
    records.append({"step": 50, "epoch": 0, "val_loss": 0.2})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    height, width, _ = _png_shape(plot.plot_curves(run, tmp_path / "pre.png"))
    assert (width, height) == (720, 480)
    with pytest.raises(MolsslError, match="metrics.jsonl"):
        plot.plot_pretrain_curves(tmp_path, tmp_path / "x.png")


def test_finetune_curves_and_test_plots(runs, tmp_path):
    height, width, _ = _png_shape(plot.plot_curves(runs["regression"], tmp_path / "ft.png"))
    assert width == 2 * 720
    _png_shape(plot.plot_test(runs["regression"], tmp_path / "parity.png"))
    _png_shape(plot.plot_test(runs["classification"], tmp_path / "roc.png"))
    with pytest.raises(MolsslError, match="history.jsonl"):
        plot.plot_finetune_curves(tmp_path, tmp_path / "x.png")


def test_parity_and_roc_inputs(tmp_path):
    truth = np.array([0.0, 1.0, 0.0, 1.0, np.nan])
    _png_shape(plot.plot_roc(truth, np.array([0.1, 0.9, 0.2, 0.8, 0.5]), tmp_path / "roc.png", ["t"]))
    with pytest.raises(MolsslError, match="both classes"):
        plot.plot_roc(np.zeros(4), np.arange(4.0), "unused.png")
    with pytest.raises(MolsslError, match="no labelled"):
        plot.plot_parity(np.full(3, np.nan), np.zeros(3), "unused.png")


def test_fingerprint_map(tmp_path):
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (20, 8)), rng.normal(6, 1, (20, 8))]).astype(np.float32)
    color = np.r_[np.zeros(20), np.ones(20)]
    features[3] = np.nan
    _png_shape(plot.plot_fingerprint_map(features, color, tmp_path / "map.png", "cluster"))
    xy = plot.embed_2d(features[4:], "tsne")
    centre_a, centre_b = xy[:16].mean(0), xy[16:].mean(0)
    assert np.linalg.norm(centre_a - centre_b) > xy[:16].std(0).max()  # the two clusters stay apart
    with pytest.raises(MolsslError, match="unknown map method"):
        plot.embed_2d(features[4:], "pca")


def test_cli_plot(runs, tmp_path):
    encoder = save_encoder(MolecularEncoder(TINY), tmp_path / "encoder.pt")
    runner = CliRunner()
    result = runner.invoke(app, ["plot", "test", str(runs["classification"]), "-o", str(tmp_path / "roc.png")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["plot", "map", str(runs["csv"]), "-o", str(tmp_path / "map.png"), "--color-by", "n",
                                 "--model", str(encoder)])
    assert result.exit_code == 0, result.output
    _png_shape(tmp_path / "map.png")
    result = runner.invoke(app, ["plot", "map", str(runs["csv"]), "-o", str(tmp_path / "m.png"), "--color-by", "zz",
                                 "--model", str(encoder)])
    assert result.exit_code != 0 and "'zz'" in result.output
