"""JSON-RPC over UDP for the Marstek units: one request in flight per unit, ids checked.

Marstek's Open API (``reference/devices.md`` §2.2) takes ``{"id", "method", "params"}``
datagrams on UDP port 30000 and answers ``{"id", "src", "result"}`` or ``{"id", "error":
{"code", "message"}}``. The units are "sensitive to request bursts", so :meth:`UdpRpc.call_all`
sends at most one request per unit at a time, keeps ``gap_s`` between two requests to the same
unit, gives each attempt a new id, and accepts an answer only when it comes from the unit's own
address **and** carries the id of that unit's request in flight: a late answer to an earlier
attempt, another unit's id, or garbage is logged and ignored. Units are asked in parallel (one
socket, one datagram per unit per round), so a dead unit costs ``timeout_s`` per attempt, not
per unit.
"""

from __future__ import annotations

import itertools
import json
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from executor.errors import DriverError, DriverUnavailable

log = logging.getLogger("helios.executor.marstek")


@dataclass(eq=False)  # identity: used as a dict key
class Peer:
    """One unit's address and pacing state."""

    name: str
    host: str
    port: int
    addr: tuple | None = None  # resolved (ip, port)
    last_sent_s: float = -1e9  # monotonic time of the last request
    src: str | None = None  # the "src" the unit names itself with (e.g. VenusC-<mac>)
    ignored: list = field(default_factory=list)  # why answers were dropped (tests, logs)


class UdpRpc:
    """Parallel request/answer rounds over one UDP socket (see the module docstring).

    Parameters
    ----------
    timeout_s : float
        How long one attempt waits for its answer. [s]
    gap_s : float
        Least time between two requests to the same unit. [s]
    monotonic, sleep : callable
        Real time for the pacing (injectable for tests).
    """

    def __init__(self, timeout_s: float = 2.5, gap_s: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.timeout_s = timeout_s
        self.gap_s = gap_s
        self.monotonic = monotonic
        self.sleep = sleep
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", 0))
            self._sock = sock
        return self._sock

    def close(self) -> None:
        """Close the socket (a later call opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _resolve(self, peer: Peer) -> tuple:
        if peer.addr is None:
            try:
                peer.addr = (socket.gethostbyname(peer.host), peer.port)
            except OSError as exc:
                raise DriverUnavailable(f"{peer.name}: cannot resolve {peer.host} ({exc})") \
                    from None
        return peer.addr

    def _drain(self, sock: socket.socket) -> None:
        """Drop datagrams left from earlier rounds (late answers)."""
        sock.setblocking(False)
        try:
            while True:
                sock.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # e.g. ICMP port unreachable reported on the socket
            pass
        finally:
            sock.setblocking(True)

    def call_all(self, calls: dict, retries: dict | int = 2) -> dict:
        """Ask every peer its ``(method, params)``; returns peer → result dict or DriverError.

        ``retries``: extra attempts after a timeout (per peer, or one number for all). An
        ``error`` answer or a ``result`` that is not an object is not retried.
        """
        sock = self._socket()
        self._drain(sock)
        results: dict = {}
        attempts = {peer: 0 for peer in calls}
        pending = list(calls)
        while pending:
            inflight: dict = {}  # id -> peer
            for peer in pending:
                allowed = retries.get(peer, 0) if isinstance(retries, dict) else retries
                if attempts[peer] > allowed:
                    results[peer] = DriverUnavailable(
                        f"{peer.name}: no answer to {calls[peer][0]} after {attempts[peer]} "
                        f"attempt(s) of {self.timeout_s:g} s")
                    continue
                try:
                    addr = self._resolve(peer)
                except DriverError as exc:
                    results[peer] = exc
                    continue
                wait_s = peer.last_sent_s + self.gap_s - self.monotonic()
                if wait_s > 0:
                    self.sleep(wait_s)
                request_id = next(self._ids)
                method, params = calls[peer]
                datagram = json.dumps({"id": request_id, "method": method,
                                       "params": params}).encode()
                attempts[peer] += 1
                peer.last_sent_s = self.monotonic()
                try:
                    sock.sendto(datagram, addr)
                except OSError as exc:
                    log.debug("%s: send failed: %s", peer.name, exc)
                    continue  # counts as an attempt; the timeout below applies
                inflight[request_id] = peer
            pending = [p for p in pending if p not in results]
            if not inflight:
                if pending:  # sends failed: wait out the attempt before retrying
                    self.sleep(self.timeout_s)
                continue
            answered = self._collect(sock, inflight, calls, results)
            pending = [p for p in pending if p not in answered and p not in results]
        return results

    def _collect(self, sock: socket.socket, inflight: dict, calls: dict,
                 results: dict) -> set:
        """Receive until every request in ``inflight`` is answered or the attempt times out."""
        answered: set = set()
        by_addr = {peer.addr: peer for peer in inflight.values()}
        deadline = self.monotonic() + self.timeout_s
        while len(answered) < len(inflight):
            left = deadline - self.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data, addr = sock.recvfrom(65535)
            except (socket.timeout, TimeoutError):  # noqa: UP041 - distinct on Python 3.8 (GX)
                break
            except OSError as exc:  # ICMP unreachable on some systems
                log.debug("UDP receive: %s", exc)
                continue
            peer = by_addr.get(addr)
            if peer is None:
                log.debug("UDP answer from unknown %s:%s ignored", *addr[:2])
                continue
            reply = _decode(data)
            if not isinstance(reply, dict):
                why = f"garbage {data[:40]!r}"
                peer.ignored.append(why)
                log.warning("%s: %s ignored", peer.name, why)
                continue
            expected = next((i for i, p in inflight.items() if p is peer), None)
            if reply.get("id") != expected or expected is None:
                why = f"answer with id {reply.get('id')!r} (waiting for {expected})"
                peer.ignored.append(why)
                log.warning("%s: %s ignored", peer.name, why)
                continue
            answered.add(peer)
            if isinstance(reply.get("src"), str):
                peer.src = reply["src"]
            method = calls[peer][0]
            if "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                results[peer] = DriverError(
                    f"{peer.name}: {method} refused: error {err.get('code')!r} "
                    f"{err.get('message', reply['error'])!r}")
            elif not isinstance(reply.get("result"), dict):
                results[peer] = DriverError(
                    f"{peer.name}: {method} answer without a result object: {reply!r:.80}")
            else:
                results[peer] = reply["result"]
        return answered


def _decode(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
