"""``helios override``: overrule the plan for a while, without editing YAML.

``helios override add hold --from 18:00 --to 23:00 --reason guests`` (no battery discharge),
``add charge --soc-pct 80 --from now --for 2h``, ``add export --kw 3 --from 17:00 --to 19:00``,
``add water --from now --for 1h``, ``add load dishwasher --from 13:00 --to 15:00``;
``helios override list`` and ``helios override clear [ID]``. Times: ``now``, a local clock time
(``18:00``: today's; ``--to`` the first one after ``--from``) or ISO 8601; ``--for 2h``
instead of ``--to``.

Each override is stored in SQL (who, when, why; :mod:`planner.history.overrides`), expires
by itself at its end, becomes a soft constraint of every plan it overlaps (a shortfall is an
``override`` violation), and — through the executor's overrides file rewritten on every add
and clear (:mod:`planner.plan.overrides`) — is obeyed by the executor at its next tick,
before the next plan.
"""

from __future__ import annotations

import click

from planner.cli.common import CONFIG_OPTION, DEMO_OPTION, NOW_OPTION, fail, load_config, parse_now
from planner.config import HeliosConfig
from planner.core.errors import HeliosError
from planner.plan import overrides as ovr


def _config(config_path: str | None, demo: bool) -> HeliosConfig:
    return load_config(config_path, demo=demo, need=())


def _line(o: ovr.Override, tz) -> str:
    what = o.kind + (f" {o.target}" if o.target else "")
    numbers = "".join(f", {v:g}{u}" for v, u in ((o.soc_pct, " %"), (o.kw, " kW"))
                      if v is not None)
    start, end = (x.astimezone(tz) for x in (o.start, o.end))
    why = f"  ({o.reason})" if o.reason else ""
    return (f"#{o.id:<4} {what:<16} {start:%a %d %b %H:%M} -> {end:%a %H:%M %Z}{numbers}"
            f"  by {o.created_by}{why}")


@click.group("override")
def override() -> None:
    """Manual overrides of the plan: add, list, clear (stored in SQL, obeyed at once)."""


@override.command("add")
@click.argument("kind", type=click.Choice(ovr.KINDS))
@click.argument("name", required=False)
@click.option("--from", "start", default="now", show_default=True, metavar="TIME",
              help="Start: now, a local time like 18:00, or ISO 8601.")
@click.option("--to", "end", metavar="TIME", help="End: a local time (the first after "
              "--from), or ISO 8601.")
@click.option("--for", "duration", metavar="DURATION", help="Instead of --to: 30m, 2h, 1d.")
@click.option("--soc-pct", type=click.FloatRange(0, 100),
              help="charge: up to this SoC (default max); export: down to it (default min).")
@click.option("--kw", type=click.FloatRange(min=0, min_open=True),
              help="charge/export: battery power; water/load: the device's power.")
@click.option("--reason", default="", help="Why (stored with who and when).")
@CONFIG_OPTION
@DEMO_OPTION
@NOW_OPTION
def add(kind: str, name: str | None, start: str, end: str | None, duration: str | None,
        soc_pct: float | None, kw: float | None, reason: str, config_path: str | None,
        demo: bool, now_text: str | None) -> None:
    """Add an override: KIND is charge, hold, export, water or load (then NAME: a load from
    loads:)."""
    now = parse_now(now_text).to_pydatetime()
    try:
        cfg = _config(config_path, demo)
        try:
            o = ovr.make(cfg, now, kind, name, start, end, duration, soc_pct, kw, reason)
        except ovr.OverrideError as exc:
            raise click.UsageError(str(exc)) from None
        stored, path = ovr.add(cfg, o, now)
    except HeliosError as exc:
        fail(exc)
    except OSError as exc:
        raise click.ClickException(f"cannot write the overrides file: {exc}") from None
    click.echo(f"override {_line(stored, cfg.site.tz)}")
    click.echo(f"stored; the executor obeys it now ({path}), the next helios plan plans with it")


@override.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired and cleared overrides.")
@CONFIG_OPTION
@DEMO_OPTION
@NOW_OPTION
def list_cmd(show_all: bool, config_path: str | None, demo: bool, now_text: str | None) -> None:
    """The overrides not over yet (with --all: every one)."""
    now = parse_now(now_text).to_pydatetime()
    try:
        cfg = _config(config_path, demo)
        found = ovr.listing(cfg, now, expired=show_all)
    except HeliosError as exc:
        fail(exc)
    if not found:
        click.echo("no overrides" + ("" if show_all else " in force or to come"))
    for o in found:
        state = "in force" if o.in_force(now) else ("over" if o.end <= now else "to come")
        click.echo(f"{_line(o, cfg.site.tz)}  [{state}]")


@override.command("clear")
@click.argument("override_id", required=False, type=click.IntRange(min=1))
@CONFIG_OPTION
@DEMO_OPTION
@NOW_OPTION
def clear(override_id: int | None, config_path: str | None, demo: bool,
          now_text: str | None) -> None:
    """Clear override ID (without ID: every override not over yet)."""
    now = parse_now(now_text).to_pydatetime()
    try:
        cfg = _config(config_path, demo)
        count, path = ovr.clear(cfg, now, override_id)
    except HeliosError as exc:
        fail(exc)
    except OSError as exc:
        raise click.ClickException(f"cannot write the overrides file: {exc}") from None
    if override_id is not None and count == 0:
        raise click.UsageError(f"ID: no override #{override_id} to clear (cleared already, "
                               "or no such id; see helios override list --all)")
    click.echo(f"cleared {count} override(s); {path} rewritten")
