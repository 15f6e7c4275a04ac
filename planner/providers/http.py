"""HTTP for the web providers: one session factory and one error mapping (issue 4).

Every web provider (Tibber, Nord Pool, ENTSO-E, Open-Meteo, Solcast) fetches through
:func:`request`, so timeouts, retries and error messages behave the same everywhere:

* timeouts and connection errors, HTTP 5xx: retried ``retries`` times with exponential backoff
  (``backoff_s``, doubled each time, capped at ``max_backoff_s``), then
  :class:`~planner.core.errors.ProviderUnavailable` (transient: the caller may degrade);
* HTTP 429: waits ``Retry-After`` seconds (capped at ``max_retry_after_s``; above the cap it
  gives up at once) and retries; still 429 → ``ProviderUnavailable``;
* HTTP 401/403/400/404 and other 4xx: no retry, :class:`~planner.core.errors.ProviderConfigError`
  (permanent: bad token, unknown area);
* a body that is not the JSON/XML expected: ``ProviderUnavailable`` naming the provider.

Messages name the provider and the HTTP status, never the URL's query string or headers
(tokens travel in headers or the query), and never the response body beyond a short,
redacted excerpt.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from planner.core.errors import ProviderConfigError, ProviderUnavailable

log = logging.getLogger(__name__)

USER_AGENT = "helios-ems/0.1 (+https://github.com/helios-ems/helios)"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry transient failures.

    Tests use tiny values so that error cases stay fast.
    """

    timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 60.0


DEFAULT_POLICY = RetryPolicy()


def policy_for(timeout_s: float) -> RetryPolicy:
    """:data:`DEFAULT_POLICY` with a provider's own timeout (read at call time: tests patch it)."""
    return replace(DEFAULT_POLICY, timeout_s=timeout_s)


def make_session() -> requests.Session:
    """A ``requests.Session`` with the Helios User-Agent (no automatic retries: see request)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def _retry_after_s(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _excerpt(text: str, secrets: tuple[str, ...]) -> str:
    text = " ".join(text.split())[:160]
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def request(provider: str, method: str, url: str, *, session: requests.Session | None = None,
            policy: RetryPolicy = DEFAULT_POLICY, secrets: tuple[str, ...] = (),
            **kwargs: Any) -> requests.Response:
    """Send one HTTP request with the Helios retry and error policy.

    Parameters
    ----------
    provider
        Name used in messages, e.g. ``"prices (tibber)"``.
    method, url
        As for ``requests``; ``kwargs`` (params, json, headers, data) are passed on.
    session
        Reused session (default: a new one from :func:`make_session`).
    policy
        Timeout and retry settings.
    secrets
        Strings (tokens) that must never appear in a message.

    Returns
    -------
    requests.Response
        A 2xx response.

    Raises
    ------
    ProviderUnavailable
        Timeout, connection error, HTTP 5xx or 429 after the retries.
    ProviderConfigError
        HTTP 4xx other than 429 (bad token, unknown area, bad request).
    """
    session = session or make_session()
    host = requests.utils.urlparse(url).netloc
    attempt = 0
    delay = policy.backoff_s
    while True:
        attempt += 1
        reason: str
        wait = min(delay, policy.max_backoff_s)
        try:
            response = session.request(method, url, timeout=policy.timeout_s, **kwargs)
        except requests.Timeout:
            reason = f"no answer from {host} within {policy.timeout_s:g} s (timeout)"
        except requests.ConnectionError as exc:
            text = str(exc).lower()
            kind = next((label for key, label in (
                ("refused", "connection refused"), ("name or service", "unknown host"),
                ("temporary failure in name", "DNS failure"), ("reset", "connection reset"),
                ("ssl", "TLS error")) if key in text), "connection error")
            reason = f"cannot connect to {host} ({kind})"
        except requests.RequestException as exc:
            raise ProviderUnavailable(provider, f"request to {host} failed "
                                      f"({type(exc).__name__})") from None
        else:
            status = response.status_code
            if status < 400:
                return response
            body = _excerpt(response.text, secrets)
            if status == 429:
                retry_after = _retry_after_s(response)
                reason = (f"HTTP 429 Too Many Requests from {host}"
                          + (f" (Retry-After {retry_after:g} s)" if retry_after is not None
                             else ""))
                if retry_after is not None:
                    if retry_after > policy.max_retry_after_s:
                        raise ProviderUnavailable(
                            provider, f"{reason}; waiting longer than "
                            f"{policy.max_retry_after_s:g} s is not worth it, try later")
                    wait = retry_after
            elif status >= 500:
                reason = f"HTTP {status} {response.reason} from {host} (server error)"
            else:
                hint = {401: "check the token in secrets.yaml",
                        403: "check the token and its permissions",
                        404: "check the area / URL",
                        400: "check the provider options"}.get(status, "check the options")
                raise ProviderConfigError(
                    provider, f"HTTP {status} {response.reason} from {host}: {hint}"
                    + (f" (server said: {body})" if body and status not in (401, 403) else ""))
        if attempt > policy.retries:
            raise ProviderUnavailable(provider, f"{reason}; gave up after {attempt} attempt(s)")
        log.debug("%s: %s; retry %d/%d in %.3g s", provider, reason, attempt, policy.retries,
                  wait)
        time.sleep(wait)
        delay *= 2


def json_body(provider: str, response: requests.Response) -> Any:
    """The decoded JSON body, or ProviderUnavailable naming the provider (malformed JSON)."""
    try:
        return response.json()
    except ValueError:
        raise ProviderUnavailable(
            provider, f"malformed JSON from {requests.utils.urlparse(response.url).netloc} "
            f"(HTTP {response.status_code}, {len(response.content)} bytes)") from None
