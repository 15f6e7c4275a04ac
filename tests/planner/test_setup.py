"""``helios setup`` with flags (and prompts) against the Modbus GX emulator: the files pass
``check-config``, the GX's Dynamic ESS capacity is the default capacity, secrets.yaml is 0600,
nothing is overwritten without --force, the token never lands in config.yaml."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime, timezone

import pytest
import yaml
from click.testing import CliRunner
from gx_emulator.dbus_gx import DbusDaemon, DbusGx
from gx_emulator.modbus_gx import ModbusGx
from gx_emulator.victron_ess import EssPlant

from planner import config as config_mod
from planner.cli.main import main

TOKEN = "tibber-token-5ecret"


@pytest.fixture
def gx():
    plant = EssPlant(41.0, 10.0, datetime.now(timezone.utc))
    plant.settings["/Settings/DynamicEss/BatteryCapacity"][0] = 13.8
    emulator = ModbusGx(plant, lambda: datetime.now(timezone.utc)).start()
    yield emulator
    emulator.stop()


def _flags(gx, tmp_path, *extra):
    return ["setup", "--dir", str(tmp_path), "--gx-host", "127.0.0.1", "--gx-port",
            str(gx.port), "--prices", "tibber", "--tibber-token", TOKEN, "--lat", "59.33",
            "--lon", "18.06", "--timezone", "Europe/Stockholm", "--max-charge-kw", "5",
            "--max-discharge-kw", "4", "--pv-kwp", "6.5", "--buy", "(price + 0.12) * 1.25",
            "--sell", "price", *extra]


def test_setup_with_flags_reads_the_gx_and_passes_check_config(tmp_path, gx):
    runner = CliRunner()
    result = runner.invoke(main, _flags(gx, tmp_path))
    assert result.exit_code == 0, result.output
    assert "unit 100 answers: SoC 41.0 %" in result.output
    assert "13.8 kWh" in result.output  # /Settings/DynamicEss/BatteryCapacity via 5420
    config_text = (tmp_path / "config.yaml").read_text()
    assert TOKEN not in config_text and "token: !secret tibber_token" in config_text
    assert stat.S_IMODE((tmp_path / "secrets.yaml").stat().st_mode) == 0o600
    assert yaml.safe_load((tmp_path / "secrets.yaml").read_text()) == {"tibber_token": TOKEN}
    cfg = config_mod.load(tmp_path / "config.yaml")
    assert cfg.battery.capacity_kwh == 13.8 and cfg.battery.max_discharge_kw == 4
    assert (cfg.prices.type, cfg.pv.type, cfg.load.type, cfg.state.type) == (
        "tibber", "openmeteo", "history", "gx")
    assert cfg.prices.options.token == TOKEN
    assert cfg.executor["driver"] == {"type": "victron_modbus", "host": "127.0.0.1",
                                      "port": gx.port, "unit_id": 100,
                                      "battery_unit_id": 225, "mode": "dess"}
    check = runner.invoke(main, ["check-config", "--config", str(tmp_path / "config.yaml")])
    assert check.exit_code == 0, check.output
    assert "config OK" in check.output and "warning" not in check.output
    assert gx.dess_mode == 0 and gx.override_w is None  # setup only read the GX


def test_setup_never_overwrites_without_force(tmp_path, gx):
    runner = CliRunner()
    (tmp_path / "config.yaml").write_text("# mine\n")
    result = runner.invoke(main, _flags(gx, tmp_path))
    assert result.exit_code == 2 and "--force" in result.output
    assert (tmp_path / "config.yaml").read_text() == "# mine\n"
    assert not (tmp_path / "secrets.yaml").exists()
    result = runner.invoke(main, _flags(gx, tmp_path, "--force", "--capacity-kwh", "9"))
    assert result.exit_code == 0, result.output
    assert config_mod.load(tmp_path / "config.yaml").battery.capacity_kwh == 9


def test_nordpool_by_prompts_when_flags_are_missing(tmp_path, gx):
    """No GPS on this GX: the position is asked for; the zone follows the area."""
    answers = "\n".join(["55.6", "12.6", "nordpool", "DK2", "", "", "", "0", "", ""]) + "\n"
    result = CliRunner().invoke(main, ["setup", "--dir", str(tmp_path), "--gx-host",
                                       "127.0.0.1", "--gx-port", str(gx.port)], input=answers)
    assert result.exit_code == 0, result.output
    assert "Latitude" in result.output and "position from the GX" not in result.output
    cfg = config_mod.load(tmp_path / "config.yaml")
    assert (cfg.prices.type, cfg.prices.options.area) == ("nordpool", "DK2")
    assert cfg.site.timezone == "Europe/Copenhagen" and cfg.pv.type == "none"
    assert (cfg.site.latitude, cfg.site.longitude) == (55.6, 12.6)
    assert yaml.safe_load((tmp_path / "secrets.yaml").read_text().split("\n", 1)[1]) == {}


def test_an_unreachable_gx_names_gx_host_and_writes_nothing(tmp_path, gx):
    gx.stop()
    result = CliRunner().invoke(main, _flags(gx, tmp_path))
    assert result.exit_code == 2 and "--gx-host" in result.output
    assert "Modbus TCP" in result.output
    assert not (tmp_path / "config.yaml").exists()


def test_yes_takes_the_defaults_and_state_dir_holds_the_data(tmp_path, gx):
    state = tmp_path / "var"
    result = CliRunner().invoke(main, [
        "setup", "--dir", str(tmp_path / "etc"), "--gx-host", "127.0.0.1", "--gx-port",
        str(gx.port), "--prices", "nordpool", "--area", "SE3", "--lat", "59.3", "--lon", "18.1",
        "-y", "--state-dir", str(state)], input="")
    assert result.exit_code == 0, result.output
    cfg = config_mod.load(tmp_path / "etc" / "config.yaml")
    assert cfg.site.timezone == "Europe/Stockholm" and cfg.battery.max_charge_kw == 5
    assert cfg.output.schedule_path == str(state / "schedule.json")


# --------------------------------------------------------------------------------------------
# over D-Bus (setup on the GX itself), against the private dbus-daemon GX emulator


@pytest.fixture
def dbus_gx():
    """A GX on a private dbus-daemon with a USB GPS (Stockholm, fix) and DESS capacity 13.8."""
    if shutil.which("dbus-daemon") is None and os.environ.get("CI") != "true":
        pytest.skip("dbus-daemon not installed (CI installs it: apt-get install dbus)")
    plant = EssPlant(63.0, 10.0, datetime.now(timezone.utc))
    plant.settings["/Settings/DynamicEss/BatteryCapacity"][0] = 13.8
    with DbusDaemon() as daemon:
        emulator = DbusGx(plant, lambda: datetime.now(timezone.utc), daemon.address,
                          gps=(59.329323, 18.068581, 1))
        with emulator:
            yield emulator


def _dbus_flags(gx, tmp_path, *extra):
    return ["setup", "--dir", str(tmp_path), "--driver", "victron_dbus", "--dbus-address",
            gx.address, "--prices", "nordpool", "--area", "SE3", "-y", *extra]


def test_on_the_gx_the_position_and_capacity_come_over_dbus(tmp_path, dbus_gx):
    result = CliRunner().invoke(main, _dbus_flags(dbus_gx, tmp_path), input="")
    assert result.exit_code == 0, result.output
    assert f"GX on D-Bus {dbus_gx.address} answers: SoC 63.0 %" in result.output
    assert ("position from the GX's GPS: 59.3293, 18.0686 (com.victronenergy.gps.ve_ttyUSB0)"
            in result.output)
    assert "13.8 kWh" in result.output
    cfg = config_mod.load(tmp_path / "config.yaml")
    assert (cfg.site.latitude, cfg.site.longitude) == (59.329323, 18.068581)
    assert cfg.battery.capacity_kwh == 13.8
    assert cfg.executor["driver"]["type"] == "victron_dbus"
    assert not dbus_gx.set_calls  # setup only read the GX


def test_a_gps_without_a_fix_is_not_used_and_the_position_is_asked(tmp_path, dbus_gx):
    dbus_gx.gps = (0.0, 0.0, 0)
    result = CliRunner().invoke(main, _dbus_flags(dbus_gx, tmp_path),
                                input="55.6\n12.6\n")
    assert result.exit_code == 0, result.output
    assert "position from the GX's GPS" not in result.output
    cfg = config_mod.load(tmp_path / "config.yaml")
    assert (cfg.site.latitude, cfg.site.longitude) == (55.6, 12.6)


def test_dbus_flag_with_the_modbus_driver_reads_over_dbus(tmp_path, dbus_gx):
    """--dbus: setup runs on the GX, the executor will run elsewhere over Modbus-TCP."""
    result = CliRunner().invoke(main, [
        "setup", "--dir", str(tmp_path), "--dbus", "--dbus-address", dbus_gx.address,
        "--gx-host", "venus.local", "--prices", "nordpool", "--area", "SE3", "-y"], input="")
    assert result.exit_code == 0, result.output
    cfg = config_mod.load(tmp_path / "config.yaml")
    assert (cfg.site.latitude, cfg.site.longitude) == (59.329323, 18.068581)
    assert cfg.executor["driver"]["host"] == "venus.local"


def test_an_unreachable_bus_names_dbus_address_and_writes_nothing(tmp_path, dbus_gx):
    dbus_gx.stop()  # the bus is there, Victron's services are not
    result = CliRunner().invoke(main, _dbus_flags(dbus_gx, tmp_path))
    assert result.exit_code == 2 and "--dbus-address" in result.output
    assert not (tmp_path / "config.yaml").exists()
    result = CliRunner().invoke(main, _dbus_flags(dbus_gx, tmp_path, "--dbus-address",
                                                  "unix:path=/nonexistent/bus"))
    assert result.exit_code == 2 and "--dbus-address" in result.output
