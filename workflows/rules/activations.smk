SIMILARITY = config["similarity"]
DIFFICULTY = config["difficulty"]


rule stimuli:
    input:
        rules.data.output,
    output:
        f"{RES}/stimuli/{{purpose}}/stimuli.csv",
    params:
        spec=lambda wildcards: config[wildcards.purpose]["stimuli"],
        perturb=lambda wildcards: noise_grid(config[wildcards.purpose]["noise"]),
        folder=lambda wildcards, output: Path(output[0]).parent,
        channels=config["model_input"]["channels"],
        size=config["model_input"]["size"],
    wildcard_constraints:
        purpose="similarity|difficulty",
    log:
        f"{RES}/logs/stimuli/{{purpose}}.log",
    conda:
        ENV
    shell:
        "neurocnnf stimuli {params.spec} --out {params.folder} --perturb {params.perturb} "
        "--channels {params.channels} --size {params.size} --no-progress > {log} 2>&1"


rule extract_similarity:
    input:
        model=trained("{model}"),
        stimuli=f"{RES}/stimuli/similarity/stimuli.csv",
    output:
        f"{RES}/activations/{{model}}/similarity.nc",
    params:
        checkpoint=lambda wildcards, input: checkpoint(input.model),
        stimuli=lambda wildcards, input: Path(input.stimuli).parent,
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
        "--stimuli folder:{params.stimuli} --iterations {params.iterations} "
        "--reduce {params.reduce} --model-id {wildcards.model} "
        "--device {params.device} --restart-if-changed --no-progress > {log} 2>&1"


rule extract_difficulty:
    input:
        model=trained("{model}"),
        stimuli=f"{RES}/stimuli/difficulty/stimuli.csv",
    output:
        f"{RES}/activations/{{model}}/difficulty.nc",
    params:
        checkpoint=lambda wildcards, input: checkpoint(input.model),
        stimuli=lambda wildcards, input: Path(input.stimuli).parent,
        iterations=config["iterations"],
        device=DEVICE,
    log:
        f"{RES}/logs/extract/{{model}}-difficulty.log",
    threads: THREADS
    conda:
        ENV
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf extract {params.checkpoint} --out {output} "
        "--stimuli folder:{params.stimuli} --iterations {params.iterations} "
        "--layers logits,probabilities "
        "--model-id {wildcards.model} --device {params.device} --restart-if-changed "
        "--no-progress > {log} 2>&1"
