"""``helios``: the planner's command line, one module per verb.

============================  ===================================================
verb                          module
============================  ===================================================
``helios plan``               :mod:`planner.cli.plan` (and history + report after it)
``helios check-config``       :mod:`planner.cli.check_config`
``helios db ...``             :mod:`planner.cli.db`
``helios report``             :mod:`planner.cli.report`
``helios prices``             :mod:`planner.cli.prices`
``helios forecast pv|load``   :mod:`planner.cli.forecast`
``helios backtest``           :mod:`planner.cli.backtest`
``helios serve``              :mod:`planner.cli.serve` (web app, JSON API, MQTT)
``helios ev ...``             :mod:`planner.cli.ev` (one-off car targets)
``helios override ...``       :mod:`planner.cli.override` (manual overrides)
``helios sweep``              :mod:`planner.cli.sweep` (fleet what-if on Dask)
``helios simulate``           :mod:`planner.cli.simulate` (the whole stack, accelerated)
``helios doctor``             :mod:`planner.cli.doctor` (checks each going-live step)
``helios setup``              :mod:`planner.cli.setup` (writes config + secrets)
============================  ===================================================

A verb module defines a click command and imports only :mod:`planner.cli.common` and the
layers below the CLI; this module names each in :data:`VERBS` and imports it on first use.
Exit codes (:mod:`planner.cli.common`): 0 success; 2 bad configuration or usage; 3 input
data/provider problems; 4 optimisation failed; 5 output could not be written; 6 the plan history
database failed (schedule.json already written and intact); 1 a bug (traceback).
"""

from __future__ import annotations

import importlib

import click

#: verb -> "module:attribute" of its click command. The group imports a verb's module only
#: when that verb runs (or ``--help`` lists it): ``helios plan`` runs every 5 minutes on a
#: Raspberry Pi and should not load the backtest, the report or the HTTP providers it does
#: not use (≈ 0.2 s of a ≈ 1.5 s start). A new verb is one module plus one line here.
VERBS = {
    "plan": "planner.cli.plan:plan",
    "check-config": "planner.cli.check_config:check_config",
    "db": "planner.cli.db:db",
    "report": "planner.cli.report:report_cmd",
    "backtest": "planner.cli.backtest:backtest",
    "prices": "planner.cli.prices:prices_cmd",
    "forecast": "planner.cli.forecast:forecast",
    "serve": "planner.cli.serve:serve",
    "ev": "planner.cli.ev:ev",
    "sweep": "planner.cli.sweep:sweep",
    "doctor": "planner.cli.doctor:doctor",
    "setup": "planner.cli.setup:setup",
    "override": "planner.cli.override:override",
    "simulate": "planner.cli.simulate:simulate",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *VERBS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in VERBS and cmd_name not in self.commands:
            module, attr = VERBS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="helios-ems", prog_name="helios")
def main() -> None:
    """Helios: plan a home's battery and grid use against dynamic prices."""


if __name__ == "__main__":  # pragma: no cover
    main()
