"""How an exported plugin finds its weights: a real HTTP server on localhost serves them (the
first answer breaks off half-way), the cache is written only after the sha256 matches; and
loading leaves the host's Brain-Score variables alone. No brainscore_vision needed."""

import hashlib
import http.server
import os
import subprocess
import sys
import threading

import pytest

from neurocnnf.brainscore.plugin import WeightsError, weights_path

PAYLOAD = os.urandom(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    """(url, requests served): the first request gets half the body, then the socket closes."""
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD if len(served) > 1 else PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/w.safetensors", served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEUROCNNF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("NEUROCNNF_WEIGHTS", raising=False)
    return tmp_path / "cache" / "weights"


def test_an_interrupted_download_leaves_nothing_and_the_retry_succeeds(server, cache):
    url, served = server
    with pytest.raises(WeightsError, match="nothing was cached, so the next load"):
        weights_path("cnnf_x", url, SHA256)
    assert list(cache.iterdir()) == []  # no partial file under the final or a temporary name
    path = weights_path("cnnf_x", url, SHA256)
    assert path == cache / "cnnf_x.safetensors" and path.read_bytes() == PAYLOAD
    assert weights_path("cnnf_x", url, SHA256) == path and len(served) == 2  # cached now


def test_a_wrong_sha256_is_a_clear_error_and_nothing_is_cached(server, cache):
    url, served = server
    served.append("the first, broken answer is spent")
    with pytest.raises(WeightsError, match=r"is not the exported checkpoint.*sha256 checksum "
                                           f"{SHA256} does not match the expected 0000"):
        weights_path("cnnf_x", url, "0" * 64)
    assert list(cache.iterdir()) == []


def test_a_local_plugin_reads_its_absolute_path_and_checks_it(tmp_path, cache):
    local = tmp_path / "best.safetensors"
    local.write_bytes(PAYLOAD)
    assert weights_path("cnnf_x", None, SHA256, str(local)) == local
    local.write_bytes(PAYLOAD[:-1])
    with pytest.raises(ValueError, match="does not match"):
        weights_path("cnnf_x", None, SHA256, str(local))
    with pytest.raises(WeightsError, match="does not exist"):
        weights_path("cnnf_x", None, SHA256, str(tmp_path / "moved.safetensors"))


def test_loading_sets_only_unset_cache_variables_and_never_install_dependencies(tmp_path):
    code = ("import os; from neurocnnf.brainscore.commitment import configure_environment;"
            "configure_environment();"
            "print(os.environ.get('BS_INSTALL_DEPENDENCIES'), os.environ['RESULTCACHING_HOME'],"
            " os.environ['BRAINIO_HOME'])")
    env = {k: v for k, v in os.environ.items() if k not in (
        "BS_INSTALL_DEPENDENCIES", "BRAINIO_HOME", "NEUROCNNF_BRAINSCORE_CACHE")}
    env.update(RESULTCACHING_HOME="/users/own/choice", HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    install, resultcaching, brainio = done.stdout.split()
    assert install == "None"  # the user's decision, not ours
    assert resultcaching == "/users/own/choice"
    assert brainio == str(tmp_path / ".cache" / "neurocnnf" / "brainscore" / "brainio")


@pytest.mark.slow
def test_the_export_command_says_whether_the_plugin_is_submittable(tmp_path):
    import torch

    from neurocnnf.models import fmnist_small
    from neurocnnf.train import save_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "run" / "best.safetensors"
    save_model(fmnist_small(iterations=1).eval(), checkpoint, epoch=1)

    def export(*options):
        return subprocess.run([sys.executable, "-m", "neurocnnf.cli", "brainscore", "export",
                               str(checkpoint), str(tmp_path / "plugins"), *options],
                              capture_output=True, text=True, timeout=300)

    local = export()
    assert local.returncode == 0, local.stderr[-2000:]
    assert "local only, not submittable" in local.stdout
    url = "https://example.org/best.safetensors"
    wrong = export("--weights-url", url, "--weights-sha256", "0" * 64)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert "is not the checkpoint's sha256" in wrong.stderr
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    published = export("--weights-url", url, "--weights-sha256", digest)
    assert published.returncode == 0, published.stderr[-2000:]
    assert f"submittable: the plugin downloads the weights from {url}" in published.stdout
