"""Shared types of the input providers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd

from executor.configspec import opt
from planner.core.siteconfig import SiteConfig


def cache_key(provider_type: str, options: object) -> str:
    """``<type>:<hash of the options>``, the key of a provider's cached answers in SQL: new
    options (another site, array, area, car, account) are a new series; the hash is of the
    options' repr (secrets included, never stored in clear)."""
    digest = hashlib.sha256(repr(options).encode()).hexdigest()[:16]
    return f"{provider_type}:{digest}"[:64]


def min_interval_opt(default_s: int, why: str) -> Any:
    """The ``min_interval_s`` option of a web provider: how often its API may be called.

    Between calls :mod:`planner.inputs.cache` plans on the series of the last call, kept in
    SQL (``forecast_cache``) and shown as cached in the input status. ``why`` says where the
    default comes from (the provider's terms).
    """
    return opt(default_s, f"Call the API at most this often; in between the last answer, "
               f"cached in SQL, is used and shown as cached ({why}; 0 = on every run)", "s",
               ge=0)


@dataclass(frozen=True)
class TimeSeries:
    """A regular, left-labelled UTC series as a provider delivers it.

    ``values`` is indexed by interval start (UTC); each value holds for
    ``[start, start + resolution_s)``. The unit is in the name of the series.
    """

    values: pd.Series
    resolution_s: int
    source: str

    @property
    def end(self) -> pd.Timestamp:
        """End of the last interval (exclusive). [UTC]"""
        return self.values.index[-1] + pd.Timedelta(seconds=self.resolution_s)


@dataclass(frozen=True)
class ProviderContext:
    """What every provider may need besides its own options."""

    site: SiteConfig
    now: pd.Timestamp
    #: the whole HeliosConfig, for providers that read another section (``state: gx`` uses
    #: ``executor.driver``, ``state: measurements`` uses ``storage``)
    config: Any = None
