"""The ``site:`` section of config.yaml: where the home is.

It lives below :mod:`planner.config` because the providers (one layer down) take it in their
:class:`~planner.providers.base.ProviderContext`; :mod:`planner.config` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from executor.configspec import opt


@dataclass(frozen=True)
class SiteConfig:
    """Where the site is."""

    timezone: str = opt("Europe/Berlin", "IANA time zone of the site; used for display only")
    latitude: float = opt(52.52, "Latitude, north positive", "deg", ge=-90, le=90)
    longitude: float = opt(13.40, "Longitude, east positive", "deg", ge=-180, le=180)

    @property
    def tz(self) -> ZoneInfo:
        """The site's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)
