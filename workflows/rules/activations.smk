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


# the extraction of one (model, purpose): in one job, or with `shards` > 1 as an init job, one
# job per shard writing its region of the Zarr store, and the merge (extract) renaming it
EXTRACT = (
    "OMP_NUM_THREADS={threads} neurocnnf extract {params.weights} --out {params.store} "
    "--stimuli folder:{params.stimuli} --iterations {params.iterations} "
    "{params.options} --model-id {wildcards.model} --device {params.device} --no-progress "
    "{params.mode} > {log} 2>&1"
)
EXTRACT_STEP = f"{EXTRACT} && touch {{output}}"  # init and shards: then their done-marker
EXTRACT_PARAMS = dict(
    weights=lambda wildcards: checkpoint(wildcards.model),
    store=lambda wildcards: LAYOUT.activations(wildcards.model, wildcards.purpose),
    stimuli=lambda wildcards, input: Path(input.stimuli).parent,
    options=lambda wildcards: EXTRACT_OPTIONS[wildcards.purpose],
    iterations=config["iterations"],
    device=DEVICE,
)


rule extract:
    input:
        model=trained("{model}"),
        stimuli=str(LAYOUT.stimuli("{purpose}")),
        shards=(
            expand(shard_marker("{shard}"), shard=range(SHARDS), allow_missing=True)
            if SHARDS > 1
            else []
        ),
    output:
        (
            directory(str(LAYOUT.activations("{model}", "{purpose}")))
            if SHARDS > 1
            else str(LAYOUT.activations("{model}", "{purpose}"))
        ),
    log:
        log_path("extract", "{model}-{purpose}"),
    wildcard_constraints:
        purpose="|".join(PURPOSES),
    conda:
        ENV
    threads: THREADS if SHARDS == 1 else 1  # sharded: the merge only renames the store
    params:
        **EXTRACT_PARAMS,
        mode="--shard merge" if SHARDS > 1 else "--restart-if-changed",
    shell:
        EXTRACT


rule extract_init:
    input:
        model=trained("{model}"),
        stimuli=str(LAYOUT.stimuli("{purpose}")),
    output:
        temp(shard_marker("init")),
    log:
        log_path("extract", "{model}-{purpose}-init"),
    wildcard_constraints:
        purpose="|".join(PURPOSES),
    conda:
        ENV
    threads: THREADS
    params:
        **EXTRACT_PARAMS,
        mode="--shard init --restart-if-changed",
    shell:
        EXTRACT_STEP


rule extract_shard:
    input:
        model=trained("{model}"),
        stimuli=str(LAYOUT.stimuli("{purpose}")),
        init=shard_marker("init"),
    output:
        temp(shard_marker("{shard}")),
    log:
        log_path("extract", "{model}-{purpose}-shard{shard}"),
    wildcard_constraints:
        purpose="|".join(PURPOSES),
        shard=r"\d+",
    conda:
        ENV
    threads: THREADS
    params:
        **EXTRACT_PARAMS,
        mode=lambda wildcards: f"--shard {wildcards.shard}/{SHARDS}",
    shell:
        EXTRACT_STEP
