SIMILARITY = config["similarity"]
DIFFICULTY = config["difficulty"]


rule extract_similarity:
    input:
        trained("{model}"),
    output:
        f"{RES}/activations/{{model}}/similarity.nc",
    params:
        checkpoint=lambda wildcards, input: checkpoint(input[0]),
        stimuli=SIMILARITY["stimuli"],
        perturb=noise_grid(SIMILARITY["noise"]),
        reduce=SIMILARITY["reduce"],
        iterations=config["iterations"],
        device=DEVICE,
    log:
        f"{RES}/logs/extract/{{model}}-similarity.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf extract {params.checkpoint} --out {output} "
        "--stimuli {params.stimuli} --iterations {params.iterations} "
        "--perturb {params.perturb} --reduce {params.reduce} --model-id {wildcards.model} "
        "--device {params.device} --no-progress > {log} 2>&1"


rule extract_difficulty:
    input:
        trained("{model}"),
    output:
        f"{RES}/activations/{{model}}/difficulty.nc",
    params:
        checkpoint=lambda wildcards, input: checkpoint(input[0]),
        stimuli=DIFFICULTY["stimuli"],
        perturb=noise_grid(DIFFICULTY["noise"]),
        iterations=config["iterations"],
        device=DEVICE,
    log:
        f"{RES}/logs/extract/{{model}}-difficulty.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf extract {params.checkpoint} --out {output} "
        "--stimuli {params.stimuli} --iterations {params.iterations} "
        "--layers logits,probabilities --perturb {params.perturb} "
        "--model-id {wildcards.model} --device {params.device} --no-progress > {log} 2>&1"
