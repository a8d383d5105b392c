# the report waits for every output a rule file added to REPORTED (rules/common.smk)
rule report:
    input:
        **REPORTED,
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
