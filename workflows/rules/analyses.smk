PC = config["predictive_coding"]
FIG6 = config["figure6"]


rule rsa:
    input:
        f"{RES}/activations/{{model}}/similarity.nc",
    output:
        table=f"{RES}/rsa/{{model}}/rsa.csv",
        figure=f"{RES}/rsa/{{model}}/rsa_vs_iteration.png",
    params:
        folder=lambda wildcards, output: Path(output.table).parent,
    log:
        f"{RES}/logs/rsa/{{model}}.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf analyze rsa {input} --out {params.folder} "
        "> {log} 2>&1"


rule difficulty:
    input:
        f"{RES}/activations/{{model}}/difficulty.nc",
    output:
        summary=f"{RES}/difficulty/{{model}}/difficulty_summary.json",
        figure=f"{RES}/difficulty/{{model}}/difficulty.png",
    params:
        folder=lambda wildcards, output: Path(output.summary).parent,
    log:
        f"{RES}/logs/difficulty/{{model}}.log",
    conda:
        ENV
    shell:
        "neurocnnf analyze difficulty {input} --out {params.folder} > {log} 2>&1"


rule predictive_coding:
    input:
        **{label: trained(model) for label, model in PC["models"].items()},
    output:
        summary=f"{RES}/predictive_coding/summary.json",
        comparison=f"{RES}/predictive_coding/comparison.png",
        ablations=f"{RES}/predictive_coding/ablations.png",
    params:
        models=lambda wildcards, input: " ".join(
            f"--model {label}={checkpoint(path)}" for label, path in input.items()),
        folder=lambda wildcards, output: Path(output.summary).parent,
        images=PC["images"],
        noise=",".join(str(v) for v in PC["noise"]),
        iterations=config["iterations"],
    log:
        f"{RES}/logs/predictive_coding.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf analyze predictive-coding {params.models} "
        "--out {params.folder} --images {params.images} --noise {params.noise} "
        "--iterations {params.iterations} --no-progress > {log} 2>&1"


rule figure6:
    input:
        trained(FIG6["model"]),
    output:
        summary=f"{RES}/figure6/summary.txt",
        restoration=f"{RES}/figure6/restoration.png",
    params:
        checkpoint=lambda wildcards, input: checkpoint(input[0]),
        folder=lambda wildcards, output: Path(output.summary).parent,
        dataset=config["robustness"]["dataset"],
        images=FIG6["images"],
    log:
        f"{RES}/logs/figure6.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf visualize {params.checkpoint} "
        "--out {params.folder} --dataset {params.dataset} --n-stats {params.images} "
        "> {log} 2>&1"


rule brainscore_plugin:
    input:
        trained(config["brainscore"]["model"]),
    output:
        directory(f"{RES}/brainscore/plugin"),
    params:
        checkpoint=lambda wildcards, input: checkpoint(input[0]),
    log:
        f"{RES}/logs/brainscore_plugin.log",
    conda:
        ENV
    shell:
        "neurocnnf brainscore export {params.checkpoint} {output} > {log} 2>&1"
