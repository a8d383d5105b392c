"""Reliability of `neurocnnf extract` (issue 14): SIGKILL at any point, two writers at once,
resuming from other inputs, a full disk and memory bounded whatever the batch size. Each case
runs the real command line in subprocesses and sends real signals; errors must be one line
with exit code 2 and leave what was already written as it was."""

import hashlib
import json
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
import xarray as xr

from neurocnnf.activations import open_activations
from neurocnnf.activations.store import PROGRESS, partial_path
from neurocnnf.lock import lock_path
from neurocnnf.models import fmnist_small
from neurocnnf.stimuli import load_stimuli, write_folder
from neurocnnf.train.checkpoint import save_model

pytestmark = pytest.mark.data

N = 40  # stimuli; batches of 4, so 10 batches


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint (run folder) and a folder of real Fashion-MNIST stimuli with its CSV."""
    root = tmp_path_factory.mktemp("inputs")
    torch.manual_seed(0)
    save_model(fmnist_small(iterations=4), root / "run" / "best.safetensors")
    write_folder(load_stimuli(f"fashion_mnist:test:{N}"), root / "stim", 1, 28, progress=False)
    return root / "run", root / "stim"


def _command(inputs, out: Path, stimuli: Path | None = None, *extra: str) -> list[str]:
    run, stim = inputs
    return [sys.executable, "-m", "neurocnnf.cli", "extract", str(run), "--out", str(out),
            "--stimuli", f"folder:{stimuli or stim}", "--batch-size", "4", "--no-progress",
            *extra]


def _extract(inputs, out: Path, stimuli: Path | None = None, **kwargs):
    return subprocess.run(_command(inputs, out, stimuli), capture_output=True, text=True,
                          timeout=600, **kwargs)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    """suffix -> the dataset of an uninterrupted run (made once per suffix)."""
    made = {}

    def get(suffix: str) -> xr.Dataset:
        if suffix not in made:
            out = tmp_path_factory.mktemp("reference") / f"a{suffix}"
            result = _extract(inputs, out)
            assert result.returncode == 0, result.stderr
            made[suffix] = open_activations(out).load()
        return made[suffix]

    return get


def _done(out: Path) -> int:
    """Presentations the partial store of ``out`` records as written (-1: none yet)."""
    try:
        return json.loads((partial_path(out) / PROGRESS).read_text())["done"]
    except (FileNotFoundError, ValueError):
        return -1


def _lock_owner(out: Path) -> int | None:
    try:
        return json.loads(lock_path(out).read_text())["pid"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _start_until(command: list[str], ready, **kwargs) -> subprocess.Popen:
    """Start ``command`` and return once ``ready()`` (polled every 2 ms) holds."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, **kwargs)
    deadline = time.monotonic() + 600
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"finished (rc {process.returncode}) before the point to stop it at: "
                        f"{process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("timed out waiting for the point to stop it at")
        time.sleep(0.002)
    return process


def _kill_when(command: list[str], ready) -> int:
    """Run ``command``, SIGKILL it once ``ready()`` holds; its pid."""
    process = _start_until(command, ready)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    return process.pid


def _snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _assert_finished_like(out: Path, expected: xr.Dataset) -> None:
    assert not partial_path(out).exists() and not lock_path(out).exists()
    assert not out.with_name(out.name + ".tmp").exists()
    with open_activations(out) as ds:
        xr.testing.assert_identical(ds.load(), expected)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_sigkill_at_several_points_then_rerun_equals_an_uninterrupted_run(inputs, reference,
                                                                          tmp_path, suffix):
    out = tmp_path / f"a{suffix}"
    command = _command(inputs, out)
    reached = []
    for target in (4, 20):  # after 1 batch; after 5 (the second run resumes from the first)
        pid = _kill_when(command, lambda t=target: _done(out) >= t)
        reached.append(_done(out))
        assert not out.exists()
        assert _lock_owner(out) == pid  # a stale lock, left by a dead process
    assert 4 <= reached[0] < reached[1] < N
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    _assert_finished_like(out, reference(suffix))


@pytest.mark.slow
def _wait_stopped(pid: int, timeout: float = 10.0) -> None:
    """Return once process ``pid`` is in the stopped state (Linux /proc), then let its
    last write settle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("T"):
            break
        time.sleep(0.05)
    time.sleep(0.5)


def test_a_second_writer_fails_at_once_naming_the_holder(inputs, reference, tmp_path):
    out = tmp_path / "a.zarr"
    first = _start_until(_command(inputs, out), lambda: _done(out) >= 4)
    first.send_signal(signal.SIGSTOP)  # alive and holding the lock, mid-extraction
    _wait_stopped(first.pid)  # the signal is asynchronous: a write may still be landing
    try:
        before = _snapshot(partial_path(out))
        started = time.monotonic()
        second = _extract(inputs, out)
        line = _one_error_line(second)
        assert f"{out} is being written by pid {first.pid} on host {socket.gethostname()}" \
            in line, line
        assert time.monotonic() - started < 60  # no extraction work before failing
        assert _snapshot(partial_path(out)) == before and not out.exists()
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=600) == 0, first.stderr.read()
    _assert_finished_like(out, reference(".zarr"))


@pytest.mark.slow
def test_resuming_from_a_reordered_stimulus_csv_is_refused(inputs, reference, tmp_path):
    stim = tmp_path / "stim"
    subprocess.run(["cp", "-r", str(inputs[1]), str(stim)], check=True)
    out = tmp_path / "a.nc"
    _kill_when(_command(inputs, out, stim), lambda: _done(out) >= 8)
    before = _snapshot(partial_path(out))
    csv = stim / "stimuli.csv"
    original = csv.read_text()
    header, *rows = original.splitlines()
    csv.write_text("\n".join([header, *reversed(rows)]) + "\n")
    line = _one_error_line(_extract(inputs, out, stim))
    assert f"{partial_path(out)} holds an unfinished extraction made from other inputs" in line
    assert "stimuli changed" in line and "delete it to start over" in line, line
    assert _snapshot(partial_path(out)) == before and not out.exists()
    csv.write_text(original)  # the inputs it was made from: it resumes
    assert _extract(inputs, out, stim).returncode == 0
    _assert_finished_like(out, reference(".nc"))


def test_other_settings_are_refused_by_name_or_restart_when_asked(tmp_path, monkeypatch):
    """In-process: the refusal names each differing setting; restart_if_changed starts over."""
    from neurocnnf.activations import StoreError, extract
    from neurocnnf.activations.store import PartialStore

    torch.manual_seed(0)
    model = fmnist_small(iterations=3).eval()
    stimuli = load_stimuli("fashion_mnist:test:10")
    out = tmp_path / "a.zarr"
    write = PartialStore.write

    def dies_after_the_first_batch(self, start, arrays):
        if start > 0:
            raise KeyboardInterrupt
        write(self, start, arrays)

    monkeypatch.setattr(PartialStore, "write", dies_after_the_first_batch)
    with pytest.raises(KeyboardInterrupt):
        extract(model, stimuli, out, batch_size=4, progress=False)
    monkeypatch.setattr(PartialStore, "write", write)
    before = _snapshot(partial_path(out))
    with pytest.raises(StoreError, match=r"other inputs \(iterations: 3 -> 2; layers changed\)"):
        extract(model, stimuli, out, iterations=2, layers=["conv2"], progress=False)
    assert _snapshot(partial_path(out)) == before and not lock_path(out).exists()
    extract(model, stimuli, out, iterations=2, restart_if_changed=True, progress=False)
    expected = extract(model, stimuli, tmp_path / "b.zarr", iterations=2, progress=False)
    with open_activations(out) as ds, open_activations(expected) as straight:
        xr.testing.assert_identical(ds.load(), straight.load())


def _no_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@pytest.mark.slow
def test_a_full_disk_fails_cleanly_and_the_rerun_completes_identically(inputs, reference,
                                                                       tmp_path):
    """RLIMIT_FSIZE stands in for a full disk: writes past it fail with EFBIG (Python ignores
    SIGXFSZ). First mid-extraction (batches written into the NetCDF file), then while the
    NetCDF file is created (HDF5)."""
    out = tmp_path / "a.nc"
    command = _command(inputs, out)
    process = _start_until(command, lambda: _done(out) >= 8, preexec_fn=_no_core_dumps)
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
    _, stderr = process.communicate(timeout=600)
    done = _done(out)
    line = _one_error_line(subprocess.CompletedProcess(command, process.returncode, "", stderr))
    assert f"cannot write {partial_path(out)}: File too large; {done} of {N} presentations " \
           f"are saved in {partial_path(out)}" in line and "to resume" in line, line
    assert 8 <= done < N and not out.exists()

    assert _extract(inputs, out).returncode == 0
    _assert_finished_like(out, reference(".nc"))

    def limited() -> None:  # the metadata fits; the NetCDF file's blocks (~48 MB) do not
        _no_core_dumps()
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, resource.RLIM_INFINITY))

    fresh = tmp_path / "b.nc"
    line = _one_error_line(_extract(inputs, fresh, preexec_fn=limited))
    assert f"cannot write {partial_path(fresh)}.tmp: " in line, line
    assert not fresh.exists() and not partial_path(fresh).exists()
    assert not Path(f"{partial_path(fresh)}.tmp").exists()
    assert _extract(inputs, fresh).returncode == 0
    _assert_finished_like(fresh, reference(".nc"))


PEAK = textwrap.dedent("""
    import sys, torch
    from neurocnnf.activations import Reduce, extract
    from neurocnnf.models import fmnist_small
    from neurocnnf.stimuli import load_stimuli
    torch.manual_seed(0)
    extract(fmnist_small(iterations=4), load_stimuli("fashion_mnist:test:200"), sys.argv[1],
            reduce=Reduce("random", 8), batch_size=int(sys.argv[2]), max_batch_mb=16,
            progress=False)
    # VmHWM: this process's own peak (ru_maxrss would carry the parent's size across exec)
    print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
""")


@pytest.mark.slow
def test_memory_is_bounded_whatever_batch_size_the_caller_asks_for(tmp_path):
    """200 images x every layer x 5 iterations are ~215 MiB of activations (~400 MiB more peak
    memory measured) in one model call; asked for as one batch, extraction splits it into
    calls of <= 16 MiB."""
    peaks = {}
    for batch_size in (16, 200):
        done = subprocess.run([sys.executable, "-c", PEAK, str(tmp_path / f"{batch_size}.zarr"),
                               str(batch_size)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        peaks[batch_size] = int(done.stdout.split()[-1]) / 1024  # MiB
    assert peaks[200] < peaks[16] + 64, peaks
