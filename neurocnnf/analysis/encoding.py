"""Encoding models: cross-validated PLS / ridge from model features to neurons, and the
split-half internal-consistency ceiling (Spearman-Brown corrected), as Brain-Score does."""

from __future__ import annotations

import numpy as np
from sklearn.cross_decomposition import PLSRegression
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import StratifiedShuffleSplit


def pearson_per_column(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r between matching columns of a and b (n, k) -> (k,)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    denominator = np.sqrt((a**2).sum(0) * (b**2).sum(0))
    return np.divide((a * b).sum(0), denominator, out=np.zeros(a.shape[1]),
                     where=denominator > 0)


def encoding_score(features: np.ndarray, neurons: np.ndarray, groups: np.ndarray | None = None,
                   model: str = "pls", components: int = 25, splits: int = 10,
                   test_size: float = 0.1, seed: int = 0) -> dict[str, float]:
    """Median over neurons of the held-out Pearson r, averaged over ``splits`` splits.

    features: (n, d) model responses; neurons: (n, k) recordings (averaged over repetitions);
    groups: (n,) labels to stratify splits by (e.g. object_name). model 'pls' or 'ridge'.
    """
    features, neurons = np.asarray(features, float), np.asarray(neurons, float)
    if len(features) != len(neurons):
        raise ValueError("features and neurons need the same stimuli (rows)")
    labels = np.zeros(len(features)) if groups is None else np.asarray(groups)
    splitter = StratifiedShuffleSplit(splits, test_size=test_size, random_state=seed)
    medians = []
    for train, test in splitter.split(features, labels):
        if model == "pls":
            regression = PLSRegression(n_components=min(components, len(train) - 1,
                                                        features.shape[1]), scale=False)
        elif model == "ridge":
            regression = RidgeCV(alphas=np.logspace(-3, 5, 9))
        else:
            raise ValueError(f"unknown encoding model {model!r}: use 'pls' or 'ridge'")
        regression.fit(features[train], neurons[train])
        predicted = regression.predict(features[test])
        medians.append(np.median(pearson_per_column(predicted, neurons[test])))
    return {"score": float(np.mean(medians)), "sem": float(np.std(medians) / np.sqrt(splits))}


def split_half_ceiling(repetitions: np.ndarray, splits: int = 10, seed: int = 0) -> float:
    """Internal consistency of recordings (repetition, n, k): median over neurons of the
    Spearman-Brown corrected correlation between two random halves of the repetitions."""
    repetitions = np.asarray(repetitions, float)
    if repetitions.shape[0] < 2:
        raise ValueError("a split-half ceiling needs at least two repetitions")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(splits):
        order = rng.permutation(repetitions.shape[0])
        half = len(order) // 2
        a = repetitions[order[:half]].mean(0)
        b = repetitions[order[half:]].mean(0)
        r = np.median(pearson_per_column(a, b))
        values.append(2 * r / (1 + r))
    return float(np.mean(values))


def layer_iteration_encoding(activations, neurons: np.ndarray, stimulus_ids,
                             groups: np.ndarray | None = None, model: str = "pls",
                             layers: list[str] | None = None, **kwargs):
    """Encoding score of every layer at every iteration of an activation dataset.

    activations: dataset from ``neurocnnf extract`` (presentation x iteration x neuroid);
    neurons: (n, k) recordings of the stimuli ``stimulus_ids`` (matched on stimulus_id);
    groups: (n,) stratification labels. Returns a tidy DataFrame (layer, iteration, score, sem).
    """
    import pandas as pd

    index = {sid: i for i, sid in enumerate(activations["stimulus_id"].values)}
    missing = [sid for sid in stimulus_ids if sid not in index]
    if missing:
        raise ValueError(f"{len(missing)} recorded stimuli are not in the activations, "
                         f"e.g. {missing[:3]}")
    rows = np.array([index[sid] for sid in stimulus_ids])
    names = layers or [n for n in activations.data_vars if activations[n].ndim == 3
                       and not n.endswith("_feedback") and n != "probabilities"]
    records = []
    for layer in names:
        values = activations[layer].values[rows]  # (n, T+1, D)
        for t in range(values.shape[1]):
            result = encoding_score(values[:, t], neurons, groups, model, **kwargs)
            records.append({"layer": layer, "iteration": t, **result})
    return pd.DataFrame(records)
