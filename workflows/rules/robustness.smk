ROBUST = config["robustness"]


rule robustness:
    input:
        models=expand(trained("{model}", "{seed}"), model=ROBUST["model"], seed=SEEDS),
        twins=expand(
            trained("{model}", "{seed}"),
            model=[ROBUST["twin"]] if "twin" in ROBUST else [],
            seed=SEEDS,
        ),
    output:
        table=str(LAYOUT.robustness_files.table),
        results=str(LAYOUT.robustness_files.results),
        masking=str(LAYOUT.robustness_files.masking),
    log:
        log_path("robustness"),
    conda:
        ENV
    threads: THREADS
    resources:
        gpu=GPU,
    params:
        checkpoints=" ".join(checkpoint(ROBUST["model"], seed) for seed in SEEDS),
        twins=(
            " ".join(f"--twin {checkpoint(ROBUST['twin'], seed)}" for seed in SEEDS)
            if "twin" in ROBUST
            else ""
        ),
        folder=LAYOUT.robustness,
        dataset=ROBUST["dataset"],
        images=ROBUST["images"],
        eps=ROBUST["eps"],
        attacks=",".join(ROBUST["attacks"]),
        pgd_steps=ROBUST["pgd_steps"],
        spsa_steps=ROBUST["spsa_steps"],
        test_iterations=",".join(map(str, ROBUST["test_iterations"])),
        device=DEVICE,
    shell:
        "OMP_NUM_THREADS={threads} neurocnnf evaluate {params.checkpoints} {params.twins} "
        "--out {params.folder} --dataset {params.dataset} --limit {params.images} "
        "--eps {params.eps} --attacks {params.attacks} --pgd-steps {params.pgd_steps} "
        "--spsa-steps {params.spsa_steps} --test-iterations {params.test_iterations} "
        "--device {params.device} --no-progress > {log} 2>&1"


REPORTED["robustness"] = rules.robustness.output.results
