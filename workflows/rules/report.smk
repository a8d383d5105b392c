rule report:
    input:
        manifest=rules.data.output,
        models=expand(trained("{model}", "{seed}"), model=list(config["models"]), seed=SEEDS),
        robustness=rules.robustness.output.table,
        rsa=expand(rules.rsa.output.table, model=SIMILARITY["models"]),
        difficulty=expand(rules.difficulty.output.summary, model=DIFFICULTY["models"]),
        predictive_coding=rules.predictive_coding.output.summary,
        figure6=rules.figure6.output.summary,
        brainscore=rules.brainscore_plugin.output,
    output:
        markdown=f"{RES}/report.md",
        html=f"{RES}/report.html",
    params:
        folder=lambda wildcards, output: Path(output.markdown).parent,
        name=config["name"],
    log:
        f"{RES}/logs/report.log",
    conda:
        ENV
    script:
        "../../analyses/report.py"
