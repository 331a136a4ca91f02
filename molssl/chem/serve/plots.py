"""PNG plots of runs and models: pre-training and fine-tuning curves, test-split parity / ROC, fingerprint maps.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``, rendered by Agg), so
no pyplot state or GUI backend is touched and the functions work in scripts, servers and notebooks.
Every function writes one PNG and returns its path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from molssl.errors import MolsslError

DPI = 120


def _figure(width: float = 6.0, height: float = 4.0, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, (list(axes) if ncols > 1 else [axes])


def _save(fig, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --------------------------------------------------------------------------- training curves
def plot_pretrain_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Training loss per logged step and validation loss of a ``molssl pretrain`` run (``metrics.jsonl``)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise MolsslError(f"{run_dir} has no metrics.jsonl; give a `molssl pretrain` run directory")
    records = _read_jsonl(path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    valid = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    if not train and not valid:
        raise MolsslError(f"{path} has no loss records yet")
    fig, (ax,) = _figure()
    if train:
        ax.plot(*zip(*train), label="training loss", lw=1.2)
    if valid:
        ax.plot(*zip(*valid), "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("contrastive loss (NT-Xent)")
    ax.set_title(f"pre-training: {Path(run_dir).name}")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out)


def plot_finetune_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Training loss and validation metric per epoch of every model of a ``molssl finetune`` run."""
    run_dir = Path(run_dir)
    histories = sorted(run_dir.rglob("history.jsonl"))
    if not histories:
        raise MolsslError(f"{run_dir} has no history.jsonl; give a `molssl finetune` run directory")
    fig, (left, right) = _figure(ncols=2)
    metric_name = None
    for path in histories:
        records = _read_jsonl(path)
        if not records:
            continue
        label = str(path.parent.relative_to(run_dir)) if path.parent != run_dir else "model"
        epochs = [r["epoch"] + 1 for r in records]
        metric_name = next(k for k in records[0] if k.startswith("valid_"))
        left.plot(epochs, [r["train_loss"] for r in records], label=label)
        right.plot(epochs, [r[metric_name] for r in records], label=label)
    if metric_name is None:
        raise MolsslError(f"{run_dir}: the history files are empty")
    left.set(xlabel="epoch", ylabel="training loss", title=f"fine-tuning: {run_dir.name}")
    right.set(xlabel="epoch", ylabel=metric_name.replace("_", " "), title="validation (best epoch is kept)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    if len(histories) <= 12:
        right.legend(fontsize=7)
    return _save(fig, out)


def plot_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Pre-training or fine-tuning curves, whichever kind of run ``run_dir`` is."""
    if (Path(run_dir) / "metrics.jsonl").is_file():
        return plot_pretrain_curves(run_dir, out)
    return plot_finetune_curves(run_dir, out)


# --------------------------------------------------------------------------- test split
def plot_parity(y_true: np.ndarray, y_pred: np.ndarray, out: str | Path, y_std: Optional[np.ndarray] = None,
                title: str = "", units: Optional[str] = None) -> Path:
    """Predicted vs measured (one task), with the y = x line, RMSE and R²; error bars = ensemble std."""
    y_true, y_pred = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    keep = ~np.isnan(y_true)
    y_true, y_pred = y_true[keep], y_pred[keep]
    if y_true.size == 0:
        raise MolsslError("nothing to plot: no labelled molecules")
    rmse = float(np.sqrt(np.mean((y_pred - y_true) ** 2)))
    r2 = 1.0 - float(np.sum((y_pred - y_true) ** 2) / max(np.sum((y_true - y_true.mean()) ** 2), 1e-12))
    fig, (ax,) = _figure(5.0, 5.0)
    if y_std is not None:
        ax.errorbar(y_true, y_pred, yerr=np.asarray(y_std, float).ravel()[keep], fmt="none", ecolor="0.7", lw=0.8)
    ax.scatter(y_true, y_pred, s=14, alpha=0.8)
    low, high = min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())
    ax.plot([low, high], [low, high], "k--", lw=1)
    unit = f" [{units}]" if units else ""
    ax.set(xlabel=f"measured{unit}", ylabel=f"predicted{unit}",
           title=f"{title}\nRMSE {rmse:.3f}, R² {r2:.3f}, n = {y_true.size}".strip())
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_roc(y_true: np.ndarray, y_score: np.ndarray, out: str | Path, tasks: Sequence[str] = (),
             title: str = "") -> Path:
    """ROC curve of each task (labelled molecules, both classes present), AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    y_true, y_score = np.atleast_2d(np.asarray(y_true, float).T).T, np.atleast_2d(np.asarray(y_score, float).T).T
    fig, (ax,) = _figure(5.5, 5.0)
    aucs = []
    for j in range(y_true.shape[1]):
        keep = ~np.isnan(y_true[:, j])
        t, s = y_true[keep, j], y_score[keep, j]
        if len(np.unique(t)) < 2:
            continue
        fpr, tpr, _ = roc_curve(t, s)
        aucs.append(roc_auc_score(t, s))
        name = tasks[j] if j < len(tasks) else f"task {j}"
        ax.plot(fpr, tpr, lw=1.2, label=f"{name} (AUC {aucs[-1]:.3f})")
    if not aucs:
        raise MolsslError("ROC curves need both classes among the labelled molecules")
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title=f"{title}\nmean ROC-AUC {np.mean(aucs):.3f}".strip())
    ax.legend(fontsize=7 if len(aucs) > 4 else 9, loc="lower right")
    ax.grid(alpha=0.3)
    return _save(fig, out)


def plot_test(run_dir: str | Path, out: str | Path, data_dir: Optional[str] = None) -> Path:
    """Parity plot (regression) or ROC curves (classification) of a fine-tuning run's ensemble on its test split."""
    from molssl.chem.serve.ensemble import load_ensemble as load_model
    from molssl.chem.serve.evaluation import ensemble_test_predictions

    ensemble = load_model(run_dir)
    result = ensemble_test_predictions(run_dir, ensemble, data_dir)
    title = f"{Path(run_dir).name}: test split ({ensemble.n_members} member(s))"
    if result.task_type == "regression":
        return plot_parity(result.y_true[:, 0], result.mean[:, 0], out,
                           result.std[:, 0] if ensemble.n_members > 1 else None, title, ensemble.units)
    return plot_roc(result.y_true, result.mean, out, result.tasks, title)


# --------------------------------------------------------------------------- fingerprint maps
def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """2-D coordinates of the rows of ``features`` by t-SNE (scikit-learn) or UMAP (``umap-learn``, if installed)."""
    features = np.asarray(features, dtype=np.float32)
    n = features.shape[0]
    if n < 3:
        raise MolsslError(f"a 2-D map needs at least 3 molecules, got {n}")
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed).fit_transform(features)
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise MolsslError("method 'umap' needs the umap-learn package; use 'tsne' or install umap-learn") from exc
        return umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed).fit_transform(features)
    raise MolsslError(f"unknown map method {method!r}; use tsne or umap")


def plot_fingerprint_map(features: np.ndarray, color: Sequence[float], out: str | Path, color_label: str = "",
                         method: str = "tsne", labels: Optional[Sequence[str]] = None, seed: int = 0,
                         title: str = "") -> Path:
    """Scatter of a 2-D embedding of ``features`` coloured by a numeric property; NaN rows are left out."""
    features = np.asarray(features, dtype=np.float32)
    color = np.asarray(color, dtype=float)
    if color.shape[0] != features.shape[0]:
        raise MolsslError(f"{features.shape[0]} fingerprints but {color.shape[0]} colour values")
    keep = ~np.isnan(features).any(axis=1) & ~np.isnan(color)
    xy = embed_2d(features[keep], method, seed)
    fig, (ax,) = _figure(6.0, 5.0)
    points = ax.scatter(xy[:, 0], xy[:, 1], c=color[keep], cmap="viridis", s=18)
    fig.colorbar(points, ax=ax, label=color_label)
    if labels is not None and keep.sum() <= 60:
        for (x, y), text in zip(xy, np.asarray(labels, dtype=object)[keep]):
            ax.annotate(str(text), (x, y), fontsize=6, alpha=0.8, xytext=(2, 2), textcoords="offset points")
    ax.set(xlabel=f"{method} 1", ylabel=f"{method} 2",
           title=title or f"learned fingerprints ({method})\ncoloured by {color_label}")
    ax.set_xticks([])
    ax.set_yticks([])
    return _save(fig, out)
