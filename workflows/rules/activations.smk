DIFFICULTY = config["difficulty"]


# what each stimulus set's activations keep: the outputs, for the difficulty analysis
EXTRACT_OPTIONS = {
    "difficulty": "--layers logits,probabilities",
}


rule stimuli:
    input:
        rules.data.output,
    output:
        str(LAYOUT.stimuli("{purpose}")),
    log:
        log_path("stimuli", "{purpose}"),
    wildcard_constraints:
        purpose="|".join(PURPOSES),
    conda:
        ENV
    params:
        spec=lambda wildcards: config[wildcards.purpose]["stimuli"],
        perturb=lambda wildcards: noise_grid(config[wildcards.purpose]["noise"]),
        folder=lambda wildcards, output: Path(output[0]).parent,
        channels=lambda wildcards: stimulus_input(wildcards.purpose)["channels"],
        size=lambda wildcards: stimulus_input(wildcards.purpose)["size"],
    shell:
        "neurocnnf stimuli {params.spec} --out {params.folder} --perturb {params.perturb} "
        "--channels {params.channels} --size {params.size} --no-progress > {log} 2>&1"


rule extract:
    input:
        model=trained("{model}"),
        stimuli=str(LAYOUT.stimuli("{purpose}")),
    output:
        str(LAYOUT.activations("{model}", "{purpose}")),
    log:
        log_path("extract", "{model}-{purpose}"),
    wildcard_constraints:
        purpose="|".join(PURPOSES),
    conda:
        ENV
    threads: THREADS
    params:
        checkpoint=lambda wildcards: checkpoint(wildcards.model),
        stimuli=lambda wildcards, input: Path(input.stimuli).parent,
        options=lambda wildcards: EXTRACT_OPTIONS[wildcards.purpose],
        iterations=config["iterations"],
        device=DEVICE,
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf extract {params.checkpoint} --out {output} "
        "--stimuli folder:{params.stimuli} --iterations {params.iterations} "
        "{params.options} --model-id {wildcards.model} "
        "--device {params.device} --restart-if-changed --no-progress > {log} 2>&1"
