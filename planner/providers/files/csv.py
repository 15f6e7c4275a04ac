"""CSV providers: recorded or exported prices, PV and load.

File format: a header row with ``ts_utc`` (ISO 8601 interval start with an offset, e.g.
``2026-05-01T10:00:00Z``) and a value column (``price_eur_per_kwh``, ``pv_kw`` or ``load_kw``,
or the name given in ``column:``). Rows must be in time order, regular (hourly, 15-min, ...),
without gaps or duplicates; the first problem found is reported with its line and timestamp.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from executor.configspec import opt
from planner.core.errors import DataError, NaiveTimestampError, ProviderConfigError
from planner.providers import register
from planner.providers.base import ProviderContext, TimeSeries

_OFFSET = re.compile(r"(?:Z|z|[+-]\d\d:?\d\d)$")
#: prices above this are almost certainly EUR/MWh, not EUR/kWh
_PRICE_SANITY_EUR_PER_KWH = 20.0


def read_series(path: str | Path, column: str, what: str, nonnegative: bool) -> TimeSeries:
    """Read and check a one-value-column CSV time series.

    Parameters
    ----------
    path
        The CSV file.
    column
        The value column to read (its unit is in its name).
    what
        Name for error messages, e.g. ``"prices (csv)"``.
    nonnegative
        Reject negative values (powers).

    Raises
    ------
    ProviderConfigError
        The file cannot be read or lacks a column.
    NaiveTimestampError, DataError
        Naming the line and timestamp of the first bad row (naive or unparsable timestamp,
        non-numeric value, duplicate, out of order, gap, implausible unit).
    """
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ProviderConfigError(what, f"file not found: {path}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ProviderConfigError(what, f"cannot read {path} as CSV: {exc}") from None
    frame.columns = [c.strip() for c in frame.columns]
    for needed in ("ts_utc", column):
        if needed not in frame.columns:
            raise ProviderConfigError(
                what, f"{path}: expected a column {needed!r}, found columns "
                f"{', '.join(frame.columns) or '(none)'}")
    if frame.empty:
        raise DataError(f"{what}: {path} has no data rows")
    stamps = frame["ts_utc"].str.strip()
    line = lambda i: i + 2  # noqa: E731 - header is line 1
    naive = ~stamps.str.contains(_OFFSET)
    if naive.any():
        i = int(np.argmax(naive.to_numpy()))
        raise NaiveTimestampError(
            f"{what}: {path} line {line(i)}: timestamp {stamps.iloc[i]!r} has no time zone; "
            "expected UTC like 2026-01-01T00:00:00Z")
    index = pd.to_datetime(stamps, format="ISO8601", utc=True, errors="coerce")
    if index.isna().any():
        i = int(np.argmax(index.isna().to_numpy()))
        raise DataError(f"{what}: {path} line {line(i)}: {stamps.iloc[i]!r} is not an ISO 8601 "
                        "timestamp")
    values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float))
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise DataError(f"{what}: {path} line {line(i)} ({stamps.iloc[i]}): {column} = "
                        f"{frame[column].iloc[i]!r} is not a number")
    if nonnegative and (values < 0).any():
        i = int(np.argmax((values < 0).to_numpy()))
        raise DataError(f"{what}: {path} line {line(i)} ({stamps.iloc[i]}): {column} = "
                        f"{values.iloc[i]:g}, expected a value >= 0")
    if column.endswith("_eur_per_kwh") and (values.abs() > _PRICE_SANITY_EUR_PER_KWH).any():
        i = int(np.argmax((values.abs() > _PRICE_SANITY_EUR_PER_KWH).to_numpy()))
        raise DataError(f"{what}: {path} line {line(i)} ({stamps.iloc[i]}): {column} = "
                        f"{values.iloc[i]:g} looks like EUR/MWh; expected EUR/kWh (divide by 1000)")
    idx = pd.DatetimeIndex(index)
    dup = idx.duplicated()
    if dup.any():
        i = int(np.argmax(dup))
        raise DataError(f"{what}: {path} line {line(i)}: duplicate timestamp {stamps.iloc[i]}")
    steps = (np.diff(idx.as_unit("s").asi8) if len(idx) > 1 else np.array([3600]))
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0)) + 1
        raise DataError(f"{what}: {path} line {line(i)}: {stamps.iloc[i]} is earlier than the row "
                        "before; rows must be in time order")
    resolution = int(steps.min())
    if resolution < 60 or 86400 % resolution:
        raise DataError(f"{what}: {path}: interval of {resolution} s; expected a resolution that "
                        "divides one day, e.g. 15 min or 1 h")
    gap = steps != resolution
    if gap.any():
        i = int(np.argmax(gap))
        missing = idx[i] + pd.Timedelta(seconds=resolution)
        raise DataError(f"{what}: {path}: gap, no row for {missing.strftime('%Y-%m-%dT%H:%M:%SZ')} "
                        f"(line {line(i + 1)} jumps to {stamps.iloc[i + 1]}); the file's "
                        f"resolution is {resolution} s")
    series = pd.Series(values.to_numpy(dtype=float), index=idx.rename("ts_utc"), name=column)
    return TimeSeries(series, resolution, str(path))


@register("prices", "csv")
class CsvPrices:
    """Spot prices from a CSV file. [EUR/kWh]"""

    @dataclass(frozen=True)
    class Config:
        path: str = opt(help="CSV file with ts_utc and the price column", path=True)
        column: str = opt("price_eur_per_kwh", "Name of the price column [EUR/kWh]")

    def __init__(self, config: Config, context: ProviderContext):
        self.config = config

    def fetch(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """All prices in the file (the caller slices the horizon)."""
        return read_series(self.config.path, self.config.column, "prices (csv)", False)


class _CsvPower:
    """Shared by the PV and load CSV providers: read, check non-negative, scale."""

    what = ""

    def __init__(self, config, context: ProviderContext):
        self.config = config

    def forecast(self, start: pd.Timestamp, end: pd.Timestamp) -> TimeSeries:
        """All values in the file, scaled (the caller slices the horizon)."""
        ts = read_series(self.config.path, self.config.column, self.what, True)
        return TimeSeries(ts.values * self.config.scale, ts.resolution_s, ts.source)


@register("pv", "csv")
class CsvPv(_CsvPower):
    """PV power forecast from a CSV file. [kW]"""

    what = "pv (csv)"

    @dataclass(frozen=True)
    class Config:
        path: str = opt(help="CSV file with ts_utc and the PV column", path=True)
        column: str = opt("pv_kw", "Name of the PV power column [kW]")
        scale: float = opt(1.0, "Factor applied to every value (e.g. a bigger array)", ge=0)


@register("load", "csv")
class CsvLoad(_CsvPower):
    """Household load forecast from a CSV file. [kW]"""

    what = "load (csv)"

    @dataclass(frozen=True)
    class Config:
        path: str = opt(help="CSV file with ts_utc and the load column", path=True)
        column: str = opt("load_kw", "Name of the load column [kW]")
        scale: float = opt(1.0, "Factor applied to every value", ge=0)
