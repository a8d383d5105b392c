"""Write the workflow's one-page report (report.md + report.html under the run's folder).

Run by Snakemake's `report` rule (which passes the `snakemake` object), or by hand:
    python workflows/scripts/report.py results/quickstart
"""

import sys
from pathlib import Path

from neurocnnf.pipelines.report import write_report

if "snakemake" in globals():
    sm = globals()["snakemake"]
    with open(sm.log[0], "w") as log:
        sys.stderr = log
        write_report(Path(sm.params.folder), name=sm.params.name, config=dict(sm.config))
elif __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python workflows/scripts/report.py RESULTS_FOLDER")
    write_report(Path(sys.argv[1]))
