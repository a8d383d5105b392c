"""The workflow and multi-process training on a real SLURM (workflows/cluster/local-slurm.sh).

A SLURM controller that already answers is used as it is; otherwise, with
NEUROCNNF_TEST_SLURM=start (.ci/run and `make test-slurm` set it), a single-node SLURM is
started as root for the session and stopped at its end. Without either, or where the script
says SLURM cannot be started here (exit status 2: not root, no apt-get, apt-get failed), the
tests skip, saying why; a SLURM that was installed but failed to start is a failure.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, SNAKEFILE, TEST_CONFIG
from safetensors.torch import load_file
from test_workflow import _job_counts

from neurocnnf.train.checkpoint import load_resume_state

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
SCRIPT = REPO / "workflows" / "cluster" / "local-slurm.sh"
PROFILE = REPO / "workflows" / "profiles" / "slurm" / "config.yaml"
LOCAL_THREADS = 2  # the local run's threads (config `threads`, --cores 2): same numbers
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")
TRAIN = ["optim.epochs=3", "data.train_limit=1000", "data.test_limit=200", "model.iterations=1"]


def _out(*command: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60,
                          env=env).stdout


def _controller_answers() -> bool:
    if shutil.which("scontrol") is None:
        return False
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=120)
    return ping.returncode == 0 and "UP" in ping.stdout


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """The environment the slurm profile reads (partitions, account) for a running SLURM."""
    started = False
    if not _controller_answers():
        if os.environ.get("NEUROCNNF_TEST_SLURM") != "start":
            pytest.skip("no SLURM controller answers `scontrol ping`; NEUROCNNF_TEST_SLURM=start "
                        "lets the tests start one (as root) with workflows/cluster/local-slurm.sh"
                        " (make test-slurm does)")
        up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
        if up.returncode != 0:
            _down()
            message = (up.stderr.strip() or up.stdout.strip()).splitlines()[-1:]
            if up.returncode == 2:
                pytest.skip(f"SLURM cannot be started here: {' '.join(message)}")
            pytest.fail(f"{SCRIPT.name} up failed ({up.returncode}): {up.stdout}{up.stderr}")
        started = True
    partitions = _out("sinfo", "-h", "-o", "%R").split()
    cpu = os.environ.get("NEUROCNNF_SLURM_PARTITION", "cpu")
    env = {"NEUROCNNF_SLURM_PARTITION": cpu,
           "NEUROCNNF_SLURM_GPU_PARTITION": os.environ.get(
               "NEUROCNNF_SLURM_GPU_PARTITION", "gpu" if "gpu" in partitions else cpu),
           "NEUROCNNF_SLURM_ACCOUNT": os.environ.get(
               "NEUROCNNF_SLURM_ACCOUNT", "neurocnnf" if started else "")}
    yield env
    if started:
        _down()


def _down() -> None:
    """Stop the local SLURM; fail if any of its daemons is left running."""
    down = subprocess.run([str(SCRIPT), "down"], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stdout + down.stderr
    status = subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60)
    running = [line for line in status.stdout.splitlines() if ": running" in line]
    assert not running, f"{SCRIPT.name} down left {running}"


def _site_profile(folder: Path) -> Path:
    """workflows/profiles/slurm as a site would adapt it to this machine: CPUs capped at the
    local run's threads (light jobs 1, so two run at once), memory / 16; all else as shipped
    (partitions and account from the environment, runtimes, executor)."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["default-resources"].update(cpus_per_task=1,
                                        mem_mb=profile["default-resources"]["mem_mb"] // 16)
    for resources in profile["set-resources"].values():
        resources["cpus_per_task"] = min(resources["cpus_per_task"], LOCAL_THREADS)
        if "mem_mb" in resources:
            resources["mem_mb"] //= 16
    profile["set-threads"] = {rule: min(n, LOCAL_THREADS)
                              for rule, n in profile["set-threads"].items()}
    profile["slurm-init-seconds-before-status-checks"] = 2
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def _snakemake_command(workdir: Path, profile: Path, config: Path, *targets: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile", str(config),
            "--directory", str(workdir), "--profile", str(profile), *targets]


def _environment(slurm: dict[str, str], **extra: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, **slurm, "PATH": path, "PYTHONPATH": str(REPO), **extra}


def _submit(slurm, workdir: Path, profile: Path, config: Path = TEST_CONFIG, *targets: str,
            **extra: str) -> subprocess.CompletedProcess:
    """The workflow through the profile; past 20 minutes, a failure that says where it stood."""
    try:
        return subprocess.run(_snakemake_command(workdir, profile, config, *targets),
                              capture_output=True, text=True, timeout=1200,
                              env=_environment(slurm, **extra))
    except subprocess.TimeoutExpired as stuck:
        pytest.fail(f"the workflow did not end in {stuck.timeout} s\n{_where_it_stood(stuck)}")


def _where_it_stood(stuck: subprocess.TimeoutExpired) -> str:
    """Snakemake's last lines, the queue and the jobs' states, and the daemons' last lines."""
    def tail(text: bytes | str | None, lines: int = 40) -> str:
        text = text.decode(errors="replace") if isinstance(text, bytes) else text or ""
        return "\n".join(text.splitlines()[-lines:])

    def command(*words: str) -> str:
        done = subprocess.run(words, capture_output=True, text=True, timeout=60)
        return done.stdout + done.stderr

    logs = Path(os.environ.get("NEUROCNNF_SLURM_STATE", "/var/lib/neurocnnf-slurm")) / "log"
    daemons = [f"--- {log.name}\n{tail(log.read_text(errors='replace'))}"
               for log in sorted(logs.glob("*.log"))]
    return "\n".join([
        "--- snakemake", tail(stuck.stdout), tail(stuck.stderr),
        "--- squeue", command("squeue", "--states=all", "-o", "%i|%T|%M|%R|%k"),
        "--- sacct", command("sacct", "-X", "-n", "-P", "-o", "JobID,State,Elapsed,Comment%60"),
        "--- sinfo", command("sinfo", "-N", "-o", "%N|%T|%E"), *daemons])


def _sacct(job_ids: list[str]) -> pd.DataFrame:
    """One row per SLURM job (allocation lines only)."""
    fields = "JobID,State,AllocCPUS,ReqMem,Timelimit,Partition,Account"
    text = _out("sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", fields)
    rows = [line.split("|") for line in text.splitlines() if line]
    return pd.DataFrame(rows, columns=fields.split(",")).set_index("JobID")


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory) -> dict:
    """The test config submitted through the slurm profile: workdir, profile, jobs
    (SLURM job id -> rule) and the run's output."""
    folder = tmp_path_factory.mktemp("slurm")
    profile = _site_profile(folder / "profile")
    started = time.monotonic()
    run = _submit(slurm, folder / "work", profile)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    output = run.stdout + run.stderr
    jobs = {job: Path(log).relative_to(folder / "work" / ".snakemake" / "slurm_logs").parts[0]
            .removeprefix("rule_") for job, log in SUBMITTED.findall(output)}
    return {"workdir": folder / "work", "profile": profile, "jobs": jobs, "output": output,
            "seconds": time.monotonic() - started}


def test_every_job_ran_as_a_slurm_job(slurm_run):
    planned = _job_counts(slurm_run["output"])
    planned.pop("all")  # the target rule runs nothing
    submitted = pd.Series(slurm_run["jobs"]).value_counts().to_dict()
    assert submitted == planned
    states = _sacct(list(slurm_run["jobs"]))["State"]
    assert len(states) == sum(planned.values()) and (states == "COMPLETED").all(), states


def _slurm_time(minutes: int) -> str:
    """sacct's Timelimit for a runtime in minutes: [D-]HH:MM:SS."""
    days, rest = divmod(minutes, 24 * 60)
    clock = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{clock}" if days else clock


def test_the_profile_resources_reach_sbatch(slurm_run, slurm):
    profile = yaml.safe_load((slurm_run["profile"] / "config.yaml").read_text())
    jobs = _sacct(list(slurm_run["jobs"]))
    rules = set()
    for job, rule in slurm_run["jobs"].items():
        asked = {**profile["default-resources"], **profile["set-resources"].get(rule, {})}
        variable = ("NEUROCNNF_SLURM_GPU_PARTITION" if "GPU_PARTITION" in asked["slurm_partition"]
                    else "NEUROCNNF_SLURM_PARTITION")
        partition = slurm[variable]
        got = jobs.loc[job]
        assert int(got["AllocCPUS"]) == asked["cpus_per_task"], (rule, got)
        assert got["ReqMem"] == f"{asked['mem_mb']}M", (rule, got)
        assert got["Timelimit"] == _slurm_time(asked["runtime"]), (rule, got)
        assert got["Partition"] == partition, (rule, got)
        if slurm["NEUROCNNF_SLURM_ACCOUNT"]:
            assert got["Account"] == slurm["NEUROCNNF_SLURM_ACCOUNT"], (rule, got)
        rules.add(rule)
    # every rule with resources of its own was submitted, and some with the defaults
    assert set(profile["set-resources"]) <= rules and rules - set(profile["set-resources"])
    # the rule's threads follow set-threads inside the job
    log = slurm_run["output"]
    assert f"OMP_NUM_THREADS={profile['set-threads']['train']} neurocnnf train" in log


def _relative(root: Path, pattern: str) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob(pattern)}


def test_the_outputs_equal_a_local_run(slurm_run, workflow_run):
    """Every trained model (metrics, weights) and every table of the results tree."""
    ours, local = slurm_run["workdir"] / "results" / "test", workflow_run / "results" / "test"
    runs = {path.parent for path in _relative(local, "results.json")
            if (local / path.parent / "best.safetensors").exists()}
    assert len(runs) == len(yaml.safe_load(TEST_CONFIG.read_text())["models"])
    for run in runs:
        a, b = (json.loads((root / run / "results.json").read_text()) for root in (ours, local))
        assert a["test"] == b["test"] and a["best_epoch"] == b["best_epoch"], run
        a, b = (load_file(root / run / "best.safetensors") for root in (ours, local))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), run
    tables = _relative(local, "*.csv")
    assert _relative(ours, "*.csv") == tables and len(tables) > 5
    for table in sorted(tables):
        a, b = (pd.read_csv(root / table).drop(columns="seconds", errors="ignore")
                for root in (ours, local))  # seconds: time taken, the one thing that differs
        pd.testing.assert_frame_equal(a, b, obj=str(table))
    assert (ours / "report.html").exists()


def test_a_missing_partition_gives_slurms_error(slurm, tmp_path):
    profile = _site_profile(tmp_path / "profile")
    run = _submit(slurm, tmp_path / "work", profile, TEST_CONFIG, "results/test/data/manifest.json",
                  NEUROCNNF_SLURM_PARTITION="no-such-partition")
    assert run.returncode != 0
    assert "invalid partition name specified" in (run.stdout + run.stderr).lower()


def _wait_for_an_epoch(metrics: Path, process: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while not metrics.exists() or not metrics.read_text().strip():
        assert process.poll() is None, "the job ended before its first epoch"
        assert time.monotonic() < deadline, "no epoch within the time limit"
        time.sleep(0.2)


def _running_job(name_part: str) -> str:
    """The id of the one running SLURM job whose comment or name contains ``name_part``."""
    lines = _out("squeue", "-h", "-t", "R", "-o", "%i|%j|%k").splitlines()
    ids = [line.split("|")[0] for line in lines if name_part in line]
    assert len(ids) == 1, lines
    return ids[0]


def test_a_job_cancelled_mid_training_is_resubmitted_and_resumes(slurm_run, slurm, tmp_path):
    """scancel after epoch 1 of 3: the workflow fails; the rerun submits a new SLURM job that
    continues from resume.pt (epochs 2 and 3 only)."""
    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["models"]["cnnf"]["set"] = TRAIN
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir = slurm_run["workdir"]
    run = workdir / "results" / "test" / "models" / "cnnf" / "seed0"
    target = "results/test/models/cnnf/seed0/results.json"
    shutil.rmtree(run)  # the run of slurm_run: this one's epochs are watched below
    command = _snakemake_command(workdir, slurm_run["profile"], path, target)
    process = subprocess.Popen(command, env=_environment(slurm), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_an_epoch(run / "metrics.jsonl", process)
        cancelled = _running_job("rule_train")
        subprocess.run(["scancel", cancelled], check=True)
        assert process.wait(timeout=300) != 0
    finally:
        process.kill()
    assert not (run / "results.json").exists()
    assert 1 <= len((run / "metrics.jsonl").read_text().splitlines()) < 3
    assert _sacct([cancelled])["State"].iloc[0].startswith("CANCELLED")
    again = _submit(slurm, workdir, slurm_run["profile"], path, target)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    resubmitted = [job for job, _ in SUBMITTED.findall(again.stdout + again.stderr)]
    assert len(resubmitted) == 1 and resubmitted[0] != cancelled
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text()
              .splitlines()]
    assert epochs == [1, 2, 3]
    log = (workdir / "results" / "test" / "logs" / "train" / "cnnf-seed0.log").read_text()
    assert "epoch 1:" not in log and "epoch 3:" in log  # the new job trained the rest only


def _srun_train(slurm, out: Path, *extra: str) -> list[str]:
    """`srun` of 2 tasks (1 CPU each), each a `neurocnnf train` process: one gloo world."""
    return ["srun", "--ntasks", "2", "--cpus-per-task", "1", "--mem-per-cpu", "1000",
            "--time", "10", "--partition", slurm["NEUROCNNF_SLURM_PARTITION"],
            "--job-name", f"neurocnnf-{out.name}", sys.executable, "-m", "neurocnnf.cli",
            "train", "quickstart", "--out", str(out), "--no-progress", "--set",
            "data.train_limit=512", "--set", "data.test_limit=100", "--set", "optim.epochs=3",
            "--set", "optim.batch_size=32", "--set", "device=cpu", *extra]


def test_srun_two_task_training_resumes_bit_identically(slurm, tmp_path):
    """Cancelled after epoch 1 of 3 (a whole epoch before the end), resumed with --resume."""
    env = _environment(slurm, OMP_NUM_THREADS="1")
    straight = subprocess.run(_srun_train(slurm, tmp_path / "straight"), env=env,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    split = tmp_path / "split"
    process = subprocess.Popen(_srun_train(slurm, split), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        _wait_for_an_epoch(split / "metrics.jsonl", process)
        subprocess.run(["scancel", _running_job("neurocnnf-split")], check=True)
        assert process.wait(timeout=120) != 0
    finally:
        process.kill()
    assert not (split / "results.json").exists()
    resumed = subprocess.run(_srun_train(slurm, split, "--resume"), env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_file(tmp_path / "straight" / "last.safetensors")
    b = load_file(split / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [json.loads(line)["epoch"] for line in (split / "metrics.jsonl").read_text()
            .splitlines()] == [1, 2, 3]
    # two processes shared each epoch: 512 images / 32 per batch / 2 ranks = 8 steps an epoch
    state = load_resume_state(split / "resume.pt")
    assert state["scheduler"]["last_epoch"] == 3 * 8


def test_the_generated_conf_has_a_gpu_partition_only_where_gpus_exist(slurm, tmp_path):
    """`local-slurm.sh conf` with an nvidia-smi that lists two GPUs, and one that lists none."""
    if shutil.which("slurmd") is None:
        pytest.skip("slurmd is not installed here (a SLURM elsewhere answers)")
    for gpus in (2, 0):
        fake = tmp_path / str(gpus)
        fake.mkdir()
        lines = "".join(f"echo 'GPU {i}: NVIDIA H200 (UUID: GPU-{i})'\n" for i in range(gpus))
        (fake / "nvidia-smi").write_text(f"#!/bin/sh\n{lines}")
        (fake / "nvidia-smi").chmod(0o755)
        conf = _out(str(SCRIPT), "conf", env={**os.environ,
                                              "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"})
        partitions = re.findall(r"^PartitionName=(\S+)", conf, re.MULTILINE)
        node = re.search(r"^NodeName=.*$", conf, re.MULTILINE).group(0)
        assert f"CPUs={os.cpu_count()}" in node
        if gpus:
            assert partitions == ["cpu", "gpu"] and "Gres=gpu:2" in node
            assert "Name=gpu File=/dev/nvidia[0-1]" in conf and "GresTypes=gpu" in conf
        else:
            assert partitions == ["cpu"] and "Gres" not in conf


SHARD_STORE = "results/test/activations/cnnf/difficulty.zarr"  # images x 2 noise levels


def _cancel_running(rule: str) -> list[str]:
    """scancel every running SLURM job of ``rule``; their ids."""
    lines = _out("squeue", "-h", "-t", "R", "-o", "%i|%k").splitlines()
    ids = [line.split("|")[0] for line in lines if f"rule_{rule}_" in line]
    if ids:
        subprocess.run(["scancel", *ids], check=True)
    return ids


def test_a_sharded_extraction_equals_one_process_after_a_cancelled_shard(slurm_run, slurm,
                                                                         tmp_path):
    """`shards: 2`: an init job, two shard jobs writing one Zarr store, the merge. Shard 1 of
    2 (chunks 5-9) is cancelled after its first batch; the rerun submits the unfinished shards
    again and the merged store equals a one-process `neurocnnf extract` bit for bit. The data
    and the trained models are slurm_run's (copied with their times: nothing upstream of the
    stimuli reruns)."""
    from test_activation_shards import _assert_bit_identical

    from neurocnnf.activations import open_activations

    config = yaml.safe_load(TEST_CONFIG.read_text())
    config["shards"] = 2
    # 640 stimuli: 10 chunks of 64, 5 a shard, so that the cancel lands with 4 batches of
    # shard 1 still to run (with 2 it once landed after the shard's last batch, under load)
    config["difficulty"]["stimuli"] = "fashion_mnist:test:320"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    workdir, profile = tmp_path / "work", _site_profile(tmp_path / "profile")
    for part in ("data", "models"):
        shutil.copytree(slurm_run["workdir"] / "results" / "test" / part,
                        workdir / "results" / "test" / part)
    store = workdir / SHARD_STORE
    shard1 = Path(f"{store}.partial") / "neurocnnf-progress-shard-1-of-2.json"
    command = _snakemake_command(workdir, profile, path, SHARD_STORE)
    with open(tmp_path / "first.log", "w") as log:
        process = subprocess.Popen(command, env=_environment(slurm), stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 900
            while not shard1.exists():
                assert process.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "shard 1 wrote no batch in time"
                time.sleep(0.01)
            # frozen at once (its next batch takes well under the time squeue and scancel
            # need; under load it once finished first); scancel's SIGCONT + SIGTERM end it
            subprocess.run(["pkill", "-STOP", "-f", "neurocnnf extract .*--shard 1/2"])
            cancelled = _cancel_running("extract_shard")
            assert process.wait(timeout=300) != 0
        finally:
            process.kill()
    assert "rule train:" not in (tmp_path / "first.log").read_text()  # slurm_run's models
    progress = json.loads(shard1.read_text())
    assert 0 < progress["start"] < progress["done"] < progress["stop"] == 640, progress
    assert cancelled and _sacct(cancelled)["State"].str.startswith("CANCELLED").all()
    assert not store.exists()
    again = _submit(slurm, workdir, profile, path, SHARD_STORE)
    output = again.stdout + again.stderr
    assert again.returncode == 0, output[-3000:]
    resubmitted = {job for job, _ in SUBMITTED.findall(output)}
    assert resubmitted and not resubmitted & set(cancelled)
    assert "rule extract_init" not in output  # the store was initialised once
    assert not Path(f"{store}.partial").exists() and (store / ".zmetadata").exists()
    threads = re.search(r"OMP_NUM_THREADS=(\d+) neurocnnf extract .*--shard 1/2", output)[1]
    results = workdir / "results" / "test"
    single = tmp_path / "single.zarr"
    subprocess.run([sys.executable, "-m", "neurocnnf.cli", "extract",
                    str(results / "models" / "cnnf" / "seed0" / "best.safetensors"),
                    "--out", str(single), "--stimuli",
                    f"folder:{results / 'stimuli' / 'difficulty'}",
                    "--iterations", str(config["iterations"]), "--layers",
                    "logits,probabilities", "--model-id", "cnnf", "--device", "cpu",
                    "--no-progress"], check=True, capture_output=True, timeout=900,
                   env=_environment(slurm, OMP_NUM_THREADS=threads))
    _assert_bit_identical(open_activations(store), open_activations(single))
