"""Featurizing chunks of SMILES in worker processes: each molecule parsed once, graph and extras from it.

Workers are forked (scripts, notebooks and stdin need no ``__main__`` guard) and run RDKit and
NumPy only, never torch. Results come back in input order with a bounded number of chunks in flight.
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np
from rdkit import Chem

from molssl.chem.data.batch import GraphArrays, graphs_to_arrays
from molssl.chem.data.extras import get_extra
from molssl.chem.data.featurize import InvalidMolecule, MolGraph, parse_many
from molssl.chem.data.featurizers import get_featurizer
from molssl.chem.data.inputs import SmilesChunk
from molssl.chem.data.labels import parse_label_cells

MAX_ATOMS = 1000  # heavy atoms; larger molecules are rejected (documented as --max-atoms)


@dataclass
class ChunkResult:
    rows: np.ndarray  # data rows of the valid molecules
    lines: np.ndarray  # their 1-based file lines
    graphs: GraphArrays
    rejected: list[tuple[int, int, str, str]]  # (row, line, smiles, reason)
    smiles: list[str] = field(default_factory=list)  # text of the valid molecules
    labels: Optional[np.ndarray] = None  # (n_valid, n_label_columns) float64
    rows_extras: dict[str, np.ndarray] = field(default_factory=dict)
    graph_extras: dict[str, tuple[GraphArrays, np.ndarray]] = field(default_factory=dict)  # graphs, counts


def featurize_chunk(chunk: SmilesChunk, extras: Sequence[str] = (), featurizer: str = "molclr",
                    label_columns: Sequence[str] = (), max_atoms: int = MAX_ATOMS) -> ChunkResult:
    """Parse and featurize one chunk (runs in worker processes).

    A molecule is rejected, with its reason, when RDKit cannot parse it, it falls outside the
    featurizer's vocabulary, it has more than ``max_atoms`` heavy atoms (checked before any
    per-atom work, so one huge molecule cannot exhaust memory), or a graph extra fails on it.
    """
    spec = get_featurizer(featurizer)
    specs = [get_extra(name) for name in extras]
    functions = {e.name: e.resolve() for e in specs}
    if specs:  # the extras need the molecules
        mols: Sequence[Optional[Chem.Mol]] = parse_many(chunk.smiles)
        results = spec.graphs_of(mols, chunk.smiles, max_atoms)
    else:  # nothing else needs them: each is let go as soon as it is read (faster)
        mols = [None] * len(chunk.smiles)
        results = spec.graphs(chunk.smiles, max_atoms)
    keep: list[int] = []
    graphs: list[MolGraph] = []
    rejected: list[tuple[int, int, str, str]] = []
    rows_values: dict[str, list[np.ndarray]] = {e.name: [] for e in specs if e.kind == "rows"}
    graph_values: dict[str, tuple[list[MolGraph], list[int]]] = {e.name: ([], []) for e in specs if e.kind == "graphs"}
    for i, (mol, (graph, reason)) in enumerate(zip(mols, results)):
        if graph is not None and graph_values:
            try:
                found = {name: functions[name](mol, graph=graph) for name in graph_values}
            except InvalidMolecule as exc:
                graph, reason = None, str(exc)
        if graph is None:
            rejected.append((chunk.rows[i], chunk.lines[i], chunk.smiles[i], reason))
            continue
        keep.append(i)
        graphs.append(graph)
        for name in rows_values:
            rows_values[name].append(functions[name](mol))
        for name, (items, counts) in graph_values.items():
            items.extend(found[name])
            counts.append(len(found[name]))
    lines = np.asarray([chunk.lines[i] for i in keep], dtype=np.int64)
    labels = None
    if label_columns:
        labels = np.stack([parse_label_cells([chunk.columns[c][i] for i in keep], lines.tolist(), c)
                           for c in label_columns], axis=1) if keep else np.zeros((0, len(label_columns)))
    return ChunkResult(
        rows=np.asarray([chunk.rows[i] for i in keep], dtype=np.int64),
        lines=lines,
        graphs=graphs_to_arrays(graphs, len(spec.atom_vocab), 2 + len(spec.bond_vocab)),
        rejected=rejected,
        smiles=[chunk.smiles[i].strip() for i in keep],
        labels=labels,
        rows_extras={e.name: np.stack(rows_values[e.name]).astype(e.dtype) if keep else e.empty()
                     for e in specs if e.kind == "rows"},
        graph_extras={name: (graphs_to_arrays(items, len(spec.atom_vocab), 2 + len(spec.bond_vocab)),
                             np.asarray(counts, dtype=np.int64)) for name, (items, counts) in graph_values.items()},
    )


def _featurize_chunk_star(args: tuple) -> ChunkResult:
    return featurize_chunk(*args)


def parallel_featurize(chunks: Iterable[SmilesChunk], extras: Sequence[str], workers: int, featurizer: str = "molclr",
                       label_columns: Sequence[str] = (), max_atoms: int = MAX_ATOMS) -> Iterator[ChunkResult]:
    """Featurize chunks in ``workers`` processes, in order, with a bounded number of chunks in flight.

    An input of a single chunk is featurized in this process (starting workers would cost more).
    Empty chunks (a CSV with a header only) yield nothing.
    """
    chunks = (chunk for chunk in chunks if chunk.smiles)
    head = list(islice(chunks, 2))
    options = (tuple(extras), featurizer, tuple(label_columns), max_atoms)
    if workers <= 1 or len(head) < 2:
        for chunk in chain(head, chunks):
            yield featurize_chunk(chunk, *options)
        return
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for chunk in chain(head, chunks):
            pending.append(pool.apply_async(_featurize_chunk_star, ((chunk, *options),)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
