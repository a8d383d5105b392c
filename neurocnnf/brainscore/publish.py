"""Can an exported plugin be submitted? Where its weights URL points, and what it serves.

Two separate questions: ``local_reason`` classifies the URL without any network access (a
file://, loopback or private-network address can only be read here: "local only, not
submittable"); ``verify_weights_url`` downloads the file once and checks its sha256 (an HTTP
error such as 404, a broken-off download or another file: not submittable). ``weights_status``
turns both answers into the one line that the export, export.json and the report show.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import urllib.error
import urllib.request
from urllib.parse import urlparse

from neurocnnf.errors import NeurocnnfError

LOCAL_ONLY = "local only, not submittable"
NOT_VERIFIED = "not verified"


class WeightsUrlError(NeurocnnfError, ValueError):
    """The weights URL does not serve the exported checkpoint (or cannot be used at all)."""


def local_reason(url: str) -> str | None:
    """Why ``url`` is readable only on this machine or network; None for a public address.

    Host names other than ``localhost`` are not resolved (no network needed): a name that
    resolves to a private address is not caught here.
    """
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return "a file:// URL"
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise WeightsUrlError(f"weights URL {url!r}: use an http(s):// address with a host")
    host = parsed.hostname.lower()
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return f"a loopback host ({host})"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback:
        return f"a loopback address ({host})"
    if address.is_private or address.is_link_local or address.is_unspecified:
        return f"a private-network address ({host})"
    return None


def verify_weights_url(url: str, sha256: str, timeout: float = 60.0) -> int:
    """Download ``url`` once (nothing is kept) and check it is the file with ``sha256``;
    returns its size in bytes. Raises WeightsUrlError with the reason otherwise."""
    digest, size = hashlib.sha256(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as error:
        raise WeightsUrlError(f"{url} answers HTTP {error.code} ({error.reason}): not "
                              "submittable; publish the checkpoint there first") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as error:
        reason = getattr(error, "reason", None) or type(error).__name__
        raise WeightsUrlError(f"{url} cannot be downloaded ({reason}): not submittable") from None
    if digest.hexdigest() != sha256:
        raise WeightsUrlError(f"{url} serves {size} bytes with sha256 {digest.hexdigest()}, not "
                              f"the checkpoint (sha256 {sha256}): not submittable; publish "
                              "this checkpoint file there")
    return size


def weights_status(url: str | None, verified: bool) -> tuple[bool, str]:
    """(submittable, the one-line status) of a plugin with weights at ``url`` (None: read
    from its local path), ``verified`` by ``verify_weights_url`` at export or not."""
    if url is None:
        return False, f"{LOCAL_ONLY}: the plugin reads the weights from this machine"
    reason = local_reason(url)
    if reason is not None:
        return False, f"{LOCAL_ONLY}: the weights URL {url} is {reason}"
    if not verified:
        return False, (f"{NOT_VERIFIED}: the weights URL {url} was not checked at export; "
                       "submittable once it serves the checkpoint")
    return True, f"submittable: the plugin downloads the weights from {url} (sha256 verified)"
