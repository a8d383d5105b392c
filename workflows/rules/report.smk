rule report:
    input:
        manifest=rules.data.output,
        models=expand(trained("{model}", "{seed}"), model=list(config["models"]), seed=SEEDS),
        robustness=rules.robustness.output.results,
        rsa=expand(rules.rsa.output.table, model=SIMILARITY["models"]),
        difficulty=expand(rules.difficulty.output.summary, model=DIFFICULTY["models"]),
        predictive_coding=rules.predictive_coding.output.summary,
        figure6=rules.figure6.output.summary,
        brainscore=rules.brainscore_plugin.output,
        neural=[rules.neural.output.summary] if "neural" in config else [],
        human_uncertainty=(
            [rules.human_uncertainty.output.summary] if "human_uncertainty" in config else []
        ),
    output:
        markdown=str(LAYOUT.report_markdown),
        html=str(LAYOUT.report_html),
    log:
        log_path("report"),
    conda:
        ENV
    params:
        folder=LAYOUT.root,
        name=config["name"],
    script:
        "../scripts/report.py"
