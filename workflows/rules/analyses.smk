PC = config["predictive_coding"]
FIG6 = config["figure6"]


rule difficulty:
    input:
        str(LAYOUT.activations("{model}", "difficulty")),
    output:
        summary=str(LAYOUT.difficulty_files("{model}").summary),
        figure=str(LAYOUT.difficulty_files("{model}").figure),
    log:
        log_path("difficulty", "{model}"),
    conda:
        ENV
    params:
        folder=lambda wildcards: LAYOUT.difficulty(wildcards.model),
    shell:
        "neurocnnf analyze difficulty {input} --out {params.folder} > {log} 2>&1"


REPORTED["difficulty"] = expand(rules.difficulty.output.summary, model=DIFFICULTY["models"])


rule predictive_coding:
    input:
        **{label: trained(model) for label, model in PC["models"].items()},
    output:
        summary=str(LAYOUT.predictive_coding_files.summary),
        comparison=str(LAYOUT.predictive_coding_files.comparison),
        ablations=str(LAYOUT.predictive_coding_files.ablations),
    log:
        log_path("predictive_coding"),
    conda:
        ENV
    threads: THREADS
    params:
        models=" ".join(
            f"--model {label}={checkpoint(model)}" for label, model in PC["models"].items()
        ),
        folder=LAYOUT.predictive_coding,
        images=PC["images"],
        noise=",".join(str(v) for v in PC["noise"]),
        iterations=config["iterations"],
        device=DEVICE,
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf analyze predictive-coding {params.models} "
        "--out {params.folder} --images {params.images} --noise {params.noise} "
        "--iterations {params.iterations} --device {params.device} --no-progress > {log} 2>&1"


REPORTED["predictive_coding"] = rules.predictive_coding.output.summary


if "neural" in config:

    rule neural:
        input:
            **{label: trained(model) for label, model in config["neural"]["models"].items()},
        output:
            summary=str(LAYOUT.neural_files.summary),
            tests=str(LAYOUT.neural_files.tests),
        log:
            log_path("neural"),
        conda:
            ENV
        threads: THREADS
        params:
            models=named_models("neural"),
            datasets=" ".join(f"--dataset {d}" for d in config["neural"]["datasets"]),
            folder=LAYOUT.neural,
            n_boot=config["neural"]["n_boot"],
            iterations=config["iterations"],
            device=DEVICE,
        shell:
            "OMP_NUM_THREADS={threads} neurocnnf analyze neural {params.models} "
            "{params.datasets} --out {params.folder} --n-boot {params.n_boot} "
            "--iterations {params.iterations} --device {params.device} > {log} 2>&1"

    REPORTED["neural"] = rules.neural.output.summary


if "human_uncertainty" in config:

    rule human_uncertainty:
        input:
            **{
                label: trained(model)
                for label, model in config["human_uncertainty"]["models"].items()
            },
        output:
            summary=str(LAYOUT.human_uncertainty_files.summary),
        log:
            log_path("human_uncertainty"),
        conda:
            ENV
        threads: THREADS
        params:
            models=named_models("human_uncertainty"),
            images=(
                ""
                if config["human_uncertainty"]["images"] is None
                else f"--n-images {config['human_uncertainty']['images']}"
            ),
            folder=LAYOUT.human_uncertainty,
            n_boot=config["human_uncertainty"]["n_boot"],
            iterations=config["iterations"],
            device=DEVICE,
        shell:
            "OMP_NUM_THREADS={threads} neurocnnf analyze human-uncertainty {params.models} "
            "{params.images} --out {params.folder} --n-boot {params.n_boot} "
            "--iterations {params.iterations} --device {params.device} > {log} 2>&1"

    REPORTED["human_uncertainty"] = rules.human_uncertainty.output.summary


rule figure6:
    input:
        trained(FIG6["model"]),
    output:
        summary=str(LAYOUT.figure6_files.summary),
        restoration=str(LAYOUT.figure6_files.restoration_figure),
    log:
        log_path("figure6"),
    conda:
        ENV
    threads: THREADS
    params:
        checkpoint=checkpoint(FIG6["model"]),
        folder=LAYOUT.figure6,
        dataset=config["robustness"]["dataset"],
        images=FIG6["images"],
        device=DEVICE,
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf visualize {params.checkpoint} "
        "--out {params.folder} --dataset {params.dataset} --n-stats {params.images} "
        "--device {params.device} > {log} 2>&1"


REPORTED["figure6"] = rules.figure6.output.summary


rule brainscore_plugin:
    input:
        trained(config["brainscore"]["model"]),
    output:
        directory(str(LAYOUT.brainscore_plugins)),
    log:
        log_path("brainscore_plugin"),
    conda:
        ENV
    params:
        checkpoint=checkpoint(config["brainscore"]["model"]),
    shell:
        "neurocnnf brainscore export {params.checkpoint} --out {output} > {log} 2>&1"


REPORTED["brainscore"] = rules.brainscore_plugin.output
