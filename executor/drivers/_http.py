"""Small JSON-over-HTTP helpers for the LAN devices (meters, OpenDTU); standard library only.

Every failure becomes an executor error with the URL in its message, never a traceback:
:class:`~executor.errors.DriverUnavailable` for transport trouble (refused, timeout, an HTTP
error status) and :class:`~executor.errors.DriverError` for a body that is not the JSON asked
for. Credentials never appear in a message.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from executor.errors import DriverError, DriverUnavailable

#: bodies larger than this are refused (a device answering garbage must not fill the memory)
MAX_BODY_BYTES = 1 << 20


def basic_auth(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic auth."""
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def unverified_tls() -> ssl.SSLContext:
    """A TLS context that encrypts but does not verify the peer (self-signed LAN devices)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def ca_tls(ca_file: str) -> ssl.SSLContext:
    """A TLS context that verifies the peer against ``ca_file`` but not its host name (the
    HomeWizard certificate names ``appliance/p1dongle/<serial>``, not the address)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.check_hostname = False
    return context


def request_json(url: str, *, method: str = "GET", form: dict | None = None,
                 headers: dict | None = None, timeout_s: float = 2.0,
                 context: ssl.SSLContext | None = None) -> Any:
    """``method url`` and the decoded JSON body.

    Parameters
    ----------
    form : dict, optional
        Sent as ``application/x-www-form-urlencoded`` (the request becomes a POST).

    Raises
    ------
    DriverUnavailable
        Connection refused, timeout, TLS failure or an HTTP error status.
    DriverError
        The body is not JSON.
    """
    data = None
    all_headers = {"Accept": "application/json"}
    all_headers.update(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        method = "POST" if method == "GET" else method
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            body = resp.read(MAX_BODY_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise DriverUnavailable(f"{method} {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DriverUnavailable(f"{method} {url}: {exc.reason}") from None
    except (socket.timeout, TimeoutError):  # noqa: UP041 - distinct on Python 3.8 (GX)
        raise DriverUnavailable(f"{method} {url}: no answer within {timeout_s:g} s") from None
    except (OSError, ValueError) as exc:  # reset connections, bad status lines, bad URLs
        raise DriverUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from None
    if len(body) > MAX_BODY_BYTES:
        raise DriverError(f"{method} {url}: answer larger than {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        snippet = body[:60].decode("utf-8", "replace")
        raise DriverError(f"{method} {url}: not JSON ({snippet!r})") from None


def number(value: Any, what: str) -> float:
    """A finite number from a JSON value (numeric strings accepted, devices differ).

    Raises
    ------
    DriverError
        Missing, not a number, or not finite; ``what`` names the field.
    """
    if isinstance(value, bool) or value is None:
        raise DriverError(f"{what}: expected a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise DriverError(f"{what}: expected a number, got {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise DriverError(f"{what}: expected a finite number, got {value!r}")
    return result


def field(payload: Any, *path: Any) -> Any:
    """``payload[path[0]][path[1]]...``, raising :class:`DriverError` naming the missing step."""
    node = payload
    for i, key in enumerate(path):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = "".join(f"[{k!r}]" for k in path[:i + 1])
            raise DriverError(f"field {where} missing") from None
    return node
