"""Shared fixtures: paths to committed data, config and CSV builders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

DATA_DIR = Path(__file__).parent / "data"


@pytest.fixture(autouse=True, scope="session")
def _lp_cache_in_tmp(tmp_path_factory):
    """The compiled-LP cache (planner/optimize/_lpcache.py) of the whole run goes to a
    temporary folder, never to the user's ~/.cache (subprocesses inherit it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HELIOS_LP_CACHE", str(tmp_path_factory.mktemp("lp-cache")))
    yield
    mp.undo()


@pytest.fixture
def data_dir() -> Path:
    """Committed fixtures (trimmed CC-BY/MIT data, see tests/data/README.md)."""
    return DATA_DIR


def write_series(path: Path, start: str, values, column: str, freq: str = "15min") -> Path:
    """Write a one-column CSV time series in the provider format."""
    index = pd.date_range(pd.Timestamp(start), periods=len(values), freq=freq, tz="UTC")
    frame = pd.DataFrame({"ts_utc": index.strftime("%Y-%m-%dT%H:%M:%SZ"), column: values})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def site_dir(tmp_path: Path):
    """Make a site directory with CSV inputs and a config.yaml; returns a builder."""

    def build(config: dict | None = None, hours: int = 48, start: str = "2026-05-01T00:00:00Z",
              prices=None, pv=None, load=None, freq: str = "1h") -> Path:
        n = hours if freq == "1h" else hours * 4
        rng = np.random.default_rng(7)
        if prices is None:
            prices = np.round(0.05 + 0.25 * np.abs(np.sin(np.arange(n) / 5.0)), 5)
        if pv is None:
            pv = np.round(np.clip(4 * np.sin((np.arange(n) % 24 - 6) / 12 * np.pi), 0, None), 3)
        if load is None:
            load = np.round(0.3 + rng.uniform(0, 1.5, n), 3)
        write_series(tmp_path / "prices.csv", start, prices, "price_eur_per_kwh", freq)
        write_series(tmp_path / "pv.csv", start, pv, "pv_kw", freq)
        write_series(tmp_path / "load.csv", start, load, "load_kw", freq)
        doc = {
            "site": {"timezone": "Europe/Berlin"},
            "prices": {"type": "csv", "path": "prices.csv"},
            "pv": {"type": "csv", "path": "pv.csv"},
            "load": {"type": "csv", "path": "load.csv"},
            "state": {"type": "static", "soc_pct": 50},
        }
        for key, value in (config or {}).items():
            if isinstance(value, dict) and isinstance(doc.get(key), dict) and "type" not in value:
                doc[key] = {**doc[key], **value}
            else:
                doc[key] = value
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return tmp_path / "config.yaml"

    return build
