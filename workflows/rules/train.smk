rule data:
    output:
        str(LAYOUT.manifest),
    log:
        log_path("data"),
    conda:
        ENV
    params:
        datasets=" ".join(config["datasets"]),
    shell:
        "neurocnnf data {params.datasets} --out {output} > {log} 2>&1"


REPORTED["manifest"] = rules.data.output


# Only results.json (written last) is declared: a killed run keeps its resume state and
# continues where it stopped; a changed model config starts that model over. A model given as
# `pretrained: NAME` is not trained: the shipped weights are written as its run folder.
rule train:
    input:
        rules.data.output,
    output:
        trained("{model}", "{seed}"),
    log:
        log_path("train", "{model}-seed{seed}"),
    conda:
        ENV
    threads: THREADS
    resources:
        gpu=GPU,
        runtime=720,
    params:
        command=train_command,
        folder=lambda wildcards: LAYOUT.model_run(wildcards.model, wildcards.seed),
    shell:
        "OMP_NUM_THREADS={threads} {params.command} > {log} 2>&1"


REPORTED["models"] = expand(trained("{model}", "{seed}"), model=list(config["models"]), seed=SEEDS)
