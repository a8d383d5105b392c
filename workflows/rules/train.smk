rule data:
    output:
        f"{RES}/data/manifest.json",
    params:
        datasets=" ".join(config["datasets"]),
    log:
        f"{RES}/logs/data.log",
    conda:
        ENV
    shell:
        "neurocnnf data {params.datasets} --out {output} > {log} 2>&1"


# Only results.json (written last) is declared: a killed run keeps its resume state and
# continues where it stopped; a changed model config starts that model over.
rule train:
    input:
        rules.data.output,
    output:
        f"{RES}/models/{{model}}/seed{{seed}}/results.json",
    params:
        preset=lambda wildcards: config["models"][wildcards.model]["preset"],
        overrides=train_overrides,
        folder=lambda wildcards, output: Path(output[0]).parent,
    log:
        f"{RES}/logs/train/{{model}}-seed{{seed}}.log",
    threads: THREADS
    resources:
        gpu=GPU,
        runtime=720,
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf train {params.preset} --out {params.folder} "
        "{params.overrides} --resume --restart-if-changed --no-progress > {log} 2>&1"
