# the report waits for every output a rule file added to REPORTED (rules/common.smk)
rule report:
    input:
        **REPORTED,
    output:
        markdown=str(LAYOUT.report_markdown),
        html=str(LAYOUT.report_html),
    params:
        folder=LAYOUT.root,
        name=config["name"],
    log:
        log_path("report"),
    conda:
        ENV
    script:
        "../scripts/report.py"
