"""The paper's robustness table (Tables 2/3) from evaluation results, and markdown output.

Needs pandas (the ``analysis`` extra), imported when a table is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurocnnf.attacks.evaluate import WORST_CASE
from neurocnnf.extras import require

if TYPE_CHECKING:
    import pandas as pd

# column -> (attack, target or None for any); "Min" and "Worst case" follow them
PAPER_COLUMNS = {"Clean": ("clean", None), "PGD (first)": ("pgd", "first"),
                 "PGD (e2e)": ("pgd", "e2e"), "SPSA (first)": ("spsa", "first"),
                 "SPSA (e2e)": ("spsa", "e2e"), "Transfer": ("transfer", None)}


def paper_table(results: pd.DataFrame, eps: float) -> pd.DataFrame:
    """Table 2/3 shape: rows CNN, CNN-F (last), CNN-F (avg); columns Clean, PGD (first),
    PGD (e2e), SPSA (first), SPSA (e2e), Transfer, Min (the lowest of the attack columns: the
    paper's per-attack minimum) and Worst case (per image over every attack run at ``eps``:
    an image counts only if correct under all of them; see ``evaluate``). Accuracy in %, mean
    over checkpoints (``± sd`` when several)."""
    pd = require("pandas", "analysis", "the paper table")
    columns = {**PAPER_COLUMNS, "Worst case": (WORST_CASE, None)}
    at_eps = results[(results["eps"] == eps) | (results["attack"] == "clean")]
    table = {}
    for (kind, scoring), group in at_eps.groupby([results["iterations"] > 0, "scoring"]):
        row_name = f"CNN-F ({scoring})" if kind else "CNN"
        row = {}
        for column, (attack, target) in columns.items():
            pick = group[group["attack"] == attack]
            if target is not None:
                pick = pick[pick["target"] == target]
            if attack == "pgd" and len(pick):
                pick = pick[pick["steps"] == pick["steps"].max()]
            if pick.empty and kind == 0 and attack != "clean":
                pick = group[group["attack"] == attack]  # a CNN's first pass is its e2e
            if not pick.empty:
                per_model = pick.groupby("model")["accuracy"].min() * 100
                row[column] = (per_model.mean(), per_model.std() if len(per_model) > 1 else None)
        attacked = [v[0] for k, v in row.items() if k in PAPER_COLUMNS and k != "Clean"]
        if attacked:
            row["Min"] = (min(attacked), None)
        table[row_name] = row
    order = [r for r in ("CNN", "CNN-F (last)", "CNN-F (avg)") if r in table]
    return pd.DataFrame({r: {c: _fmt(v) for c, v in table[r].items()} for r in order}).T.reindex(
        columns=[*PAPER_COLUMNS, "Min", "Worst case"])


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a GitHub markdown table (index as the first column)."""
    pd = require("pandas", "analysis", "markdown tables")
    header = ["", *map(str, table.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        cells = ["" if pd.isna(v) else str(v) for v in row]
        lines.append("| " + " | ".join([str(index), *cells]) + " |")
    return "\n".join(lines)


def _fmt(value: tuple[float, float | None]) -> str:
    mean, sd = value
    return f"{mean:.2f}" if sd is None or np.isnan(sd) else f"{mean:.2f} ± {sd:.2f}"
