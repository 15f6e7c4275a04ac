"""CSV inputs, resampling onto the slot grid, horizon and DST handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner import config, providers
from planner.core import timegrid
from planner.core.errors import (
    DataError,
    MissingSlotsError,
    NaiveTimestampError,
    ProviderConfigError,
    ProviderUnavailable,
)
from planner.history.store import Store
from planner.inputs import fallback
from planner.inputs import gather as inputs
from planner.plan import record, run
from planner.providers.files.csv import read_series


def _csv(tmp_path, text: str):
    path = tmp_path / "in.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "error", "fragment"), [
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00,0.1\n", NaiveTimestampError,
     "line 2: timestamp '2026-01-01T00:00:00' has no time zone"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00Z,0.1\n2026-01-01T01:00:00Z,0.1\n"
     "2026-01-01T01:00:00Z,0.2\n", DataError, "line 4: duplicate timestamp 2026-01-01T01:00:00Z"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00Z,0.1\n2026-01-01T01:00:00Z,0.1\n"
     "2026-01-01T03:00:00Z,0.2\n", DataError, "gap, no row for 2026-01-01T02:00:00Z"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00Z,0.1\n2026-01-01T01:00:00Z,abc\n",
     DataError, "line 3 (2026-01-01T01:00:00Z): price_eur_per_kwh = 'abc' is not a number"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00Z,0.1\n2026-01-01T01:00:00Z,\n",
     DataError, "line 3"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T00:00:00Z,85.3\n2026-01-01T01:00:00Z,90\n",
     DataError, "looks like EUR/MWh"),
    ("ts_utc,price_eur_per_kwh\n2026-01-01T01:00:00Z,0.1\n2026-01-01T00:00:00Z,0.1\n",
     DataError, "rows must be in time order"),
    ("ts_utc,price_eur_per_kwh\nyesterday+01:00,0.1\n", DataError, "is not an ISO 8601"),
    ("time,price\n2026-01-01T00:00:00Z,0.1\n", ProviderConfigError,
     "expected a column 'ts_utc', found columns time, price"),
    ("ts_utc,price_eur_per_kwh\n", DataError, "no data rows"),
])
def test_bad_csv_is_reported_with_line_and_timestamp(tmp_path, text, error, fragment):
    with pytest.raises(error) as info:
        read_series(_csv(tmp_path, text), "price_eur_per_kwh", "prices (csv)", False)
    assert fragment in str(info.value)
    assert str(info.value).startswith("prices (csv)")


def test_negative_power_rejected(tmp_path):
    path = _csv(tmp_path, "ts_utc,pv_kw\n2026-01-01T00:00:00Z,1.0\n2026-01-01T00:15:00Z,-0.2\n")
    with pytest.raises(DataError, match=r"line 3 .*pv_kw = -0.2, expected a value >= 0"):
        read_series(path, "pv_kw", "pv (csv)", True)


def test_missing_file(tmp_path):
    with pytest.raises(ProviderConfigError, match="file not found"):
        read_series(tmp_path / "nope.csv", "pv_kw", "pv (csv)", True)


def test_offsets_other_than_utc_are_converted(tmp_path):
    path = _csv(tmp_path, "ts_utc,load_kw\n2026-01-01T01:00:00+01:00,1\n"
                          "2026-01-01T02:00:00+01:00,2\n")
    ts = read_series(path, "load_kw", "load", True)
    assert ts.values.index[0] == pd.Timestamp("2026-01-01T00:00Z")
    assert ts.resolution_s == 3600


def test_hourly_prices_are_held_and_powers_averaged():
    index = timegrid.make_index(pd.Timestamp("2026-01-01T00:00Z"), 8, 900)
    hourly = pd.Series([0.1, 0.3], index=pd.date_range("2026-01-01", periods=2, freq="h",
                                                       tz="UTC"))
    held = timegrid.to_slot_grid(hourly, 3600, index, 900, "hold", "prices")
    assert held.tolist() == [0.1] * 4 + [0.3] * 4
    quarter = pd.Series(np.arange(8.0), index=index)
    hourly_index = timegrid.make_index(pd.Timestamp("2026-01-01T00:00Z"), 2, 3600)
    mean = timegrid.to_slot_grid(quarter, 900, hourly_index, 3600, "mean", "pv")
    assert mean.tolist() == [1.5, 5.5]


def test_slot_grid_names_first_uncovered_slot():
    index = timegrid.make_index(pd.Timestamp("2026-01-01T00:00Z"), 12, 900)
    hourly = pd.Series([0.1, 0.3], index=pd.date_range("2026-01-01", periods=2, freq="h",
                                                       tz="UTC"))
    with pytest.raises(MissingSlotsError, match="slot starting 2026-01-01T02:00:00"):
        timegrid.to_slot_grid(hourly, 3600, index, 900, "hold", "prices")


def test_naive_now_rejected():
    with pytest.raises(NaiveTimestampError, match="no time zone"):
        timegrid.to_utc("2026-01-01T10:00:00", "--now")


def test_horizon_is_cut_at_last_price_and_floored_to_slot(site_dir):
    path = site_dir(hours=30)
    cfg = config.load(path)
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T10:07:30Z"))
    assert got.index[0] == pd.Timestamp("2026-05-01T10:00Z")
    assert got.end == pd.Timestamp("2026-05-02T06:00Z")  # last hourly price 05:00-06:00
    assert got.n == 20 * 4
    assert str(got.index.tz) == "UTC"


def test_horizon_limited_by_config(site_dir):
    cfg = config.load(site_dir(hours=72, config={"planning": {"horizon_h": 24}}))
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    assert got.n == 96


def test_no_price_for_now_is_an_error(site_dir):
    cfg = config.load(site_dir(hours=24))
    with pytest.raises(MissingSlotsError, match="no price for the current slot"):
        inputs.gather(cfg, pd.Timestamp("2026-05-03T00:00Z"))
    with pytest.raises(MissingSlotsError, match="after the current slot"):
        inputs.gather(cfg, pd.Timestamp("2026-04-30T00:00Z"))


def test_load_shorter_than_prices_names_first_missing_slot(site_dir, tmp_path):
    path = site_dir(hours=48)
    (tmp_path / "load.csv").write_text(
        "ts_utc,load_kw\n" + "".join(f"2026-05-01T{h:02d}:00:00Z,0.5\n" for h in range(10)))
    cfg = config.load(path)
    with pytest.raises(MissingSlotsError, match=r"load \(csv\).*2026-05-01T10:00:00"):
        inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))


@pytest.mark.parametrize(("fixture", "hours_local_day"), [
    ("prices_dk1_2023-03-26_dst_spring_1h.csv", 23),
    ("prices_se3_2023-10-29_dst_autumn_1h.csv", 25),
])
def test_dst_days_have_23_and_25_hours(data_dir, fixture, hours_local_day):
    ts = read_series(data_dir / fixture, "price_eur_per_kwh", "prices", False)
    local = ts.values.index.tz_convert("Europe/Copenhagen")
    counts = pd.Series(1, index=local).groupby(local.date).sum()
    assert hours_local_day in counts.to_numpy()
    cfg = config.from_mapping({"planning": {"horizon_h": 48}})
    # a plan across the DST switch is 4 quarters per UTC hour, no gap, no duplicate
    index = timegrid.make_index(ts.values.index[0], 4 * len(ts.values), 900)
    spot = timegrid.to_slot_grid(ts.values, 3600, index, 900, "hold", "prices")
    assert len(spot) == 4 * len(ts.values)
    assert cfg.planning.slot_s == 900


def test_tariff_applied_to_spot(site_dir):
    cfg = config.load(site_dir(config={"tariff": {"buy": "(price + 0.1) * 1.2",
                                                   "sell": {"multiplier": 0.5}}}))
    got = inputs.gather(cfg, pd.Timestamp("2026-05-01T00:00Z"))
    np.testing.assert_allclose(got.buy_eur_per_kwh, (got.spot_eur_per_kwh + 0.1) * 1.2)
    np.testing.assert_allclose(got.sell_eur_per_kwh, got.spot_eur_per_kwh * 0.5)


# -- the fallback chain of every run (planner.inputs.fallback, used by run.plan_once) ---------

NOW = pd.Timestamp("2026-05-01T10:07:00Z")


def _prices_fail(monkeypatch, error: Exception) -> None:
    """The site's csv price provider raises ``error``; every other provider still works."""
    real = providers.create

    class Down:
        def fetch(self, start, end):
            raise error

    monkeypatch.setattr(providers, "create", lambda kind, conf, ctx: Down()
                        if kind == "prices" and conf.type == "csv" else real(kind, conf, ctx))


def test_plan_once_without_prices_or_cache_plans_flagged_self_consumption(site_dir,
                                                                          monkeypatch):
    cfg = config.load(site_dir(config={"storage": {"enabled": False}}))
    _prices_fail(monkeypatch, ProviderUnavailable("prices (csv)", "HTTP 503"))
    warnings: list[str] = []
    result = run.plan_once(cfg, NOW, warn=warnings.append)
    st = next(s for s in result.plan.inputs.status if s.kind == "prices")
    assert st.degraded and st.provider == "csv (unavailable)" and st.source == "flat price"
    assert warnings == ["prices (csv): HTTP 503; no cached prices: planning plain "
                        "self-consumption (flat price), flagged as degraded"]
    assert result.plan.inputs.end - result.plan.inputs.index[0] == pd.Timedelta(hours=24)
    f = result.plan.frame
    assert (f.sell_eur_per_kwh < f.buy_eur_per_kwh).all()
    assert "charge_grid" not in set(f.action)


def test_plan_once_falls_back_to_the_price_cache(site_dir, tmp_path, monkeypatch):
    cfg = config.load(site_dir(config={"storage": {"url": f"sqlite:///{tmp_path}/h.db"}}))
    first = run.plan_once(cfg, NOW)
    with Store.from_config(cfg) as store:
        store.save(record.record_from_result(first, cfg), cache_provider="csv")
    _prices_fail(monkeypatch, ProviderUnavailable("prices (csv)", "HTTP 503"))
    warnings: list[str] = []
    later = NOW + pd.Timedelta(hours=1)
    got = run.plan_once(cfg, later, warn=warnings.append).plan.inputs
    st = next(s for s in got.status if s.kind == "prices")
    assert st.degraded and st.provider == "csv (cached)" and st.source == "price_cache table"
    assert st.fetched_at == NOW and "HTTP 503; planned on prices fetched" in st.detail
    assert warnings == ["prices (csv): HTTP 503; planning on cached prices until "
                        "2026-05-03 02:00 CEST"]
    # the cached slots from the current one on, exactly as the first plan had them
    cached = first.plan.inputs
    assert got.index[0] == pd.Timestamp("2026-05-01T11:00Z") and got.end == cached.end
    np.testing.assert_array_equal(got.spot_eur_per_kwh, cached.spot_eur_per_kwh[4:])
    assert not next(s for s in got.status if s.kind == "pv").degraded


def test_a_permanent_price_error_is_never_hidden(site_dir, tmp_path, monkeypatch, caplog):
    cfg = config.load(site_dir(config={"storage": {"url": f"sqlite:///{tmp_path}/h.db"}}))
    _prices_fail(monkeypatch, ProviderConfigError("prices (csv)", "HTTP 401: bad token"))
    with pytest.raises(ProviderConfigError, match="bad token"):
        fallback.gather_with_fallback(cfg, NOW)
    # a transient one without a cache: the default warning goes to the log
    _prices_fail(monkeypatch, ProviderUnavailable("prices (csv)", "timeout"))
    got = fallback.gather_with_fallback(cfg, NOW)
    assert next(s for s in got.status if s.kind == "prices").source == "flat price"
    assert any("no cached prices: planning plain self-consumption" in r.getMessage()
               for r in caplog.records if r.name == "planner.inputs.fallback")

