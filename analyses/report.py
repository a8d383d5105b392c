"""Write the workflow's one-page report (Markdown + HTML).

Run by Snakemake's `report` rule (which passes the `snakemake` object), or by hand:
    python analyses/report.py results/quickstart
"""

import sys
from pathlib import Path

from neurocnnf.report import write_report


def main(folder: Path, markdown: Path, html: Path, name: str, config: dict | None) -> None:
    write_report(folder, markdown, html, name=name, config=config)


if "snakemake" in globals():
    sm = globals()["snakemake"]
    with open(sm.log[0], "w") as log:
        sys.stderr = log
        main(Path(sm.params.folder), Path(sm.output.markdown), Path(sm.output.html),
             sm.params.name, dict(sm.config))
elif __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python analyses/report.py RESULTS_FOLDER")
    results = Path(sys.argv[1])
    main(results, results / "report.md", results / "report.html", results.name, None)
