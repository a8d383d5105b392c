"""Model-to-brain RSA of every model x layer (forward and feedback) x iteration against every
subject's RDM of a region, with noise ceilings and the dual bootstrap (``rsa_inference``),
and the questions asked of it:

(1) does IT similarity change over feedback iterations (iteration 0 vs the best vs the last)?
(2) is a CNN-F at its committed iteration above its CNN twin and the comparator?
(3) do early layers match EVC and late layers IT?
(4) does the feedback representation match EVC better than the forward one?

Model RDMs are 1 - Pearson correlation of a layer's features over the stimuli (``rsa.rdm``).
A commitment maps each region to the (layer, iteration) of the forward features with the
highest mean similarity; chosen on one set and reported on another (Brain-Score's public vs
private split).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from neurocnnf.analysis.rsa import bootstrap, rdm
from neurocnnf.analysis.rsa_inference import DualBootstrap, dual_bootstrap, fdr_significant
from neurocnnf.data.brain import BrainRDMs

KEY = ["model", "layer", "kind", "iteration"]
INPUT_TAPS = ("h_hat", "input")  # the (reconstructed) image, not a layer of the network


def model_rdms(features: dict[str, dict[str, np.ndarray]], taps: dict[str, list[str]]
               ) -> tuple[pd.DataFrame, np.ndarray]:
    """Model RDMs of every model x variable x iteration.

    features: model -> variable -> (n, T+1, D) activations; taps: model -> its forward tap
    names (``<tap>_feedback`` variables are their feedback; 'h_hat', the body's input, and a
    tap named 'input' are of kind 'input', never committed to a region).
    Returns (index with model, layer, kind, iteration, depth; float64 (k, n, n) RDMs); feedback
    at iteration 0 (NaN: no feedback has arrived) and constant features are left out.
    """
    rows, rdms = [], []
    for model, variables in features.items():
        order = list(taps[model])
        for name, values in variables.items():
            layer = name.removesuffix("_feedback")
            kind = ("feedback" if name.endswith("_feedback")
                    else "input" if name in INPUT_TAPS else "forward")
            depth = order.index(layer) + 1 if layer in order else 0
            for t in range(values.shape[1]):
                x = values[:, t].reshape(len(values), -1)
                if not np.isfinite(x).all() or np.ptp(x, axis=1).max() == 0:
                    continue
                rows.append({"model": model, "layer": layer, "kind": kind, "iteration": t,
                             "depth": depth})
                rdms.append(rdm(x))
    return pd.DataFrame(rows), np.stack(rdms)


@dataclass
class RegionResult:
    """One region's evaluation. table: one row per model RDM (KEY, depth, similarity = mean
    over subjects, sem, ci_low, ci_high, ceiling_low, ceiling_high); subjects: per-subject
    similarities; boot: the dual bootstrap (None with one subject: stimuli bootstrap only)."""

    dataset: str
    region: str
    table: pd.DataFrame
    subjects: pd.DataFrame
    boot: DualBootstrap | None

    def index_of(self, model: str, layer: str, kind: str, iteration: int) -> int:
        match = self.table.index[(self.table["model"] == model) & (self.table["layer"] == layer)
                                 & (self.table["kind"] == kind)
                                 & (self.table["iteration"] == iteration)]
        if len(match) != 1:
            raise KeyError(f"no model RDM {model}/{layer}/{kind}/t={iteration}")
        return int(match[0])


def evaluate_region(index: pd.DataFrame, rdms: np.ndarray, brain: BrainRDMs,
                    method: str = "spearman", n_boot: int = 300, seed: int = 0
                    ) -> RegionResult:
    """Score every model RDM against every subject of ``brain``; see ``RegionResult``."""
    from neurocnnf.analysis.rsa import noise_ceiling
    from neurocnnf.analysis.rsa_inference import subject_scores

    scores = subject_scores(rdms, brain.rdms, method)  # (k, s)
    table = index.copy().reset_index(drop=True)
    table["dataset"], table["region"], table["method"] = brain.dataset, brain.region, method
    table["similarity"] = scores.mean(1)
    boot = None
    if len(brain.subjects) >= 2:
        boot = dual_bootstrap(rdms, brain.rdms, method, n_boot, seed)
        table["sem"] = boot.sem()
        table["ci_low"], table["ci_high"] = boot.percentile_ci().T
        low, high = noise_ceiling(list(brain.rdms), method)
    else:  # one RDM (macaque IT): resample stimuli only; no ceiling
        cis = np.array([np.nanquantile(bootstrap(r, list(brain.rdms), method, n_boot, seed),
                                       [0.025, 0.975]) for r in rdms])
        table["sem"] = np.nan
        table["ci_low"], table["ci_high"] = cis.T
        low = high = np.nan
    table["ceiling_low"], table["ceiling_high"] = low, high
    subjects = pd.DataFrame(scores, columns=brain.subjects)
    subjects = pd.concat([index.reset_index(drop=True), subjects], axis=1).melt(
        id_vars=list(index.columns), var_name="subject", value_name="similarity")
    subjects["region"] = brain.region
    return RegionResult(brain.dataset, brain.region, table, subjects, boot)


def commitment(result: RegionResult) -> dict[str, dict]:
    """model -> {layer, iteration, similarity}: the forward (layer, iteration) with the
    highest mean similarity in ``result``."""
    forward = result.table[result.table["kind"] == "forward"]
    best = forward.loc[forward.groupby("model")["similarity"].idxmax()]
    return {row.model: {"layer": row.layer, "iteration": int(row.iteration),
                        "similarity": float(row.similarity)} for row in best.itertuples()}


def committed_scores(result: RegionResult, chosen: dict[str, dict]) -> pd.DataFrame:
    """The rows of ``result.table`` at each model's committed (layer, iteration)."""
    rows = [result.index_of(m, c["layer"], "forward", c["iteration"])
            for m, c in chosen.items() if m in set(result.table["model"])]
    return result.table.loc[rows]


def pairwise(result: RegionResult, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(r, r) differences similarity[a] - similarity[b] and their t-test p (NaN on the
    diagonal, and everywhere without a dual bootstrap) of the given table rows."""
    values = result.table.loc[rows, "similarity"].to_numpy()
    diff = values[:, None] - values[None, :]
    p = np.full(diff.shape, np.nan)
    if result.boot is not None:
        pairs = np.array([(a, b) for a in rows for b in rows if a != b])
        tested = result.boot.pair_tests(pairs)
        position = {row: i for i, row in enumerate(rows)}
        for (a, b), value in zip(pairs, tested, strict=True):
            p[position[a], position[b]] = value
    return diff, p


def _test(result: RegionResult, question: str, a: int, b: int, label: str) -> dict:
    rows = result.table
    entry = {"question": question, "dataset": result.dataset, "region": result.region,
             "comparison": label,
             "a": _name(rows.loc[a]), "b": _name(rows.loc[b]),
             "similarity_a": float(rows.loc[a, "similarity"]),
             "similarity_b": float(rows.loc[b, "similarity"]),
             "difference": float(rows.loc[a, "similarity"] - rows.loc[b, "similarity"])}
    if result.boot is not None and a != b:  # (a row against itself: nothing to test)
        pair = np.array([(a, b)])
        entry["sem_difference"] = float(np.sqrt(max(result.boot.difference_variance(pair)[0],
                                                    0)))
        entry["p"] = float(result.boot.pair_tests(pair)[0])
    else:
        entry["sem_difference"], entry["p"] = np.nan, np.nan
    return entry


def _name(row: pd.Series) -> str:
    suffix = "" if row["kind"] == "forward" else f" ({row['kind']})"
    return f"{row['model']} {row['layer']}{suffix} t={int(row['iteration'])}"


def iteration_tests(result: RegionResult, chosen: dict[str, dict]) -> list[dict]:
    """(1): per model with iterations, at its committed layer: iteration 0 vs the best
    iteration vs the last one (forward features)."""
    out = []
    for model, c in chosen.items():
        rows = result.table[(result.table["model"] == model)
                            & (result.table["layer"] == c["layer"])
                            & (result.table["kind"] == "forward")]
        if rows["iteration"].nunique() < 2:
            continue
        first = rows.index[rows["iteration"] == 0][0]
        last = rows.index[rows["iteration"] == rows["iteration"].max()][0]
        best = rows["similarity"].idxmax()
        done = set()
        for a, b, label in [(best, first, "best vs iteration 0"), (last, first,
                            "last vs iteration 0"), (best, last, "best vs last")]:
            if a != b and frozenset((a, b)) not in done:
                done.add(frozenset((a, b)))
                out.append(_test(result, "1 iterations", a, b, label))
    return out


def model_tests(result: RegionResult, chosen: dict[str, dict], focus: str) -> list[dict]:
    """(2): model ``focus`` at its commitment against every other model at its own."""
    if focus not in chosen:
        return []
    a = result.index_of(focus, chosen[focus]["layer"], "forward", chosen[focus]["iteration"])
    return [_test(result, "2 models", a,
                  result.index_of(m, c["layer"], "forward", c["iteration"]), f"{focus} vs {m}")
            for m, c in chosen.items() if m != focus]


def hierarchy_tests(early: RegionResult, late: RegionResult, chosen_iteration: dict[str, int]
                    ) -> list[dict]:
    """(3): per model, at its committed iteration, the best forward layer for the early region
    (EVC) and for the late one (IT); in each region, its own best layer against the other's."""
    out = []
    for model, t in chosen_iteration.items():
        best = {}
        for result in (early, late):
            rows = result.table[(result.table["model"] == model)
                                & (result.table["kind"] == "forward")
                                & (result.table["iteration"] == t)]
            best[result.region] = rows.loc[rows["similarity"].idxmax()]
        for own, other in ((early, late), (late, early)):
            a = own.index_of(model, best[own.region]["layer"], "forward", t)
            b = own.index_of(model, best[other.region]["layer"], "forward", t)
            entry = _test(own, "3 hierarchy", a, b,
                          f"{own.region}'s best layer vs {other.region}'s best layer")
            entry["depth_a"] = int(best[own.region]["depth"])
            entry["depth_b"] = int(best[other.region]["depth"])
            out.append(entry)
    return out


def feedback_tests(result: RegionResult) -> list[dict]:
    """(4): per model with feedback, its best feedback (layer, iteration) against its best
    forward (layer, iteration) of iterations >= 1, in ``result``'s region (EVC)."""
    out = []
    table = result.table
    for model in table["model"].unique():
        mine = table[(table["model"] == model) & (table["iteration"] >= 1)]
        feedback, forward = mine[mine["kind"] == "feedback"], mine[mine["kind"] == "forward"]
        if feedback.empty or forward.empty:
            continue
        out.append(_test(result, "4 feedback vs forward", feedback["similarity"].idxmax(),
                         forward["similarity"].idxmax(), "best feedback vs best forward"))
    return out


def corrected(tests: list[dict], alpha: float = 0.01) -> pd.DataFrame:
    """The tests as a table with rsatoolbox's FDR decision (Benjamini-Hochberg at ``alpha``
    over all tests with a p-value): column 'significant'."""
    frame = pd.DataFrame(tests)
    if frame.empty:
        return frame
    frame["significant"] = False
    has_p = frame["p"].notna()
    if has_p.any():
        frame.loc[has_p, "significant"] = fdr_significant(frame.loc[has_p, "p"].to_numpy(),
                                                          alpha)
    frame["alpha_fdr"] = alpha
    return frame
