"""How an exported plugin finds its weights: a real HTTP server on localhost serves them (the
first answer breaks off half-way), the cache is written only after the sha256 matches; and
whether an export is submittable: its URL classified (file://, loopback, private network:
local only) apart from the verification at export, which a server on 127.0.0.1 answers (the
checkpoint, another file, 404). No brainscore_vision needed."""

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading

import pytest
import torch

from neurocnnf.brainscore.export import EXPORT_RECORD, export_plugin
from neurocnnf.brainscore.plugin import WeightsError, weights_path
from neurocnnf.brainscore.publish import (
    WeightsUrlError,
    local_reason,
    verify_weights_url,
    weights_status,
)
from neurocnnf.models import fmnist_small
from neurocnnf.train import save_model

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


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("run") / "best.safetensors"
    save_model(fmnist_small(iterations=1).eval(), path, epoch=1)
    return path


@pytest.fixture
def files(checkpoint):
    """(base URL, requests served) of a server on 127.0.0.1: /best.safetensors is the
    checkpoint, /other.safetensors another file, anything else 404."""
    served = []
    content = {"/best.safetensors": checkpoint.read_bytes(), "/other.safetensors": PAYLOAD}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            served.append(self.path)
            if self.path not in content:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(content[self.path])))
            self.end_headers()
            self.wfile.write(content[self.path])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("url", [
    "file:///data/best.safetensors", "http://localhost:8000/w", "http://127.0.0.1/w",
    "https://[::1]/w", "http://10.1.2.3/w", "http://192.168.0.7/w", "http://172.16.0.1/w",
    "http://169.254.1.1/w", "http://0.0.0.0/w", "https://nas.local/w"])
def test_file_loopback_and_private_network_urls_are_local_only(url):
    assert local_reason(url) is not None
    submittable, status = weights_status(url, verified=True)
    assert not submittable and status.startswith("local only, not submittable")


def test_a_public_url_is_submittable_only_once_verified():
    url = "https://zenodo.org/records/1/files/best.safetensors"
    assert local_reason(url) is None and local_reason("https://8.8.8.8/w") is None
    assert weights_status(url, verified=True) == (
        True, f"submittable: the plugin downloads the weights from {url} (sha256 verified)")
    submittable, status = weights_status(url, verified=False)
    assert not submittable and status.startswith("not verified")
    assert weights_status(None, verified=False)[1].startswith("local only, not submittable")
    with pytest.raises(WeightsUrlError, match="use an http"):
        local_reason("ftp://example.org/w")


def test_verification_downloads_the_checkpoint_once_and_checks_its_sha256(files, checkpoint):
    base, served = files
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert verify_weights_url(f"{base}/best.safetensors", digest) == checkpoint.stat().st_size
    assert served == ["/best.safetensors"]
    with pytest.raises(WeightsUrlError, match=f"sha256 {SHA256}, not the checkpoint"):
        verify_weights_url(f"{base}/other.safetensors", digest)
    with pytest.raises(WeightsUrlError, match="answers HTTP 404 .*not submittable"):
        verify_weights_url(f"{base}/missing.safetensors", digest)


def test_export_verifies_the_url_and_a_404_exports_nothing(files, checkpoint, tmp_path):
    base, served = files
    plugin = export_plugin(checkpoint, tmp_path, weights_url=f"{base}/best.safetensors")
    record = json.loads((plugin / EXPORT_RECORD).read_text())
    assert served == ["/best.safetensors"] and record["weights_verified"]
    assert not record["submittable"]  # verified, but 127.0.0.1 is this machine
    assert record["status"].startswith("local only, not submittable: the weights URL")
    with pytest.raises(WeightsUrlError, match="HTTP 404"):
        export_plugin(checkpoint, tmp_path / "missing", weights_url=f"{base}/missing")
    assert not (tmp_path / "missing").exists() or not any((tmp_path / "missing").iterdir())


@pytest.mark.slow
def test_the_export_command_says_whether_the_plugin_is_submittable(checkpoint, tmp_path):
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
    offline = export("--weights-url", url, "--weights-sha256", digest)  # no network here
    assert offline.returncode != 0 and "Traceback" not in offline.stderr
    assert f"{url} cannot be downloaded" in offline.stderr
    unchecked = export("--weights-url", url, "--weights-sha256", digest, "--no-verify-weights")
    assert unchecked.returncode == 0, unchecked.stderr[-2000:]
    assert f"not verified: the weights URL {url} was not checked" in unchecked.stdout
