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
============================  ===================================================

A verb module defines a click command and imports only :mod:`planner.cli.common` and the
layers below the CLI; this module adds each to the group. Exit codes
(:mod:`planner.cli.common`): 0 success; 2 bad configuration or usage; 3 input data/provider
problems; 4 optimisation failed; 5 output could not be written; 6 the plan history database
failed (schedule.json already written and intact); 1 a bug (traceback).
"""

from __future__ import annotations

import click

from planner.cli.backtest import backtest
from planner.cli.check_config import check_config
from planner.cli.db import db
from planner.cli.forecast import forecast
from planner.cli.plan import plan
from planner.cli.prices import prices_cmd
from planner.cli.report import report_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="helios-ems", prog_name="helios")
def main() -> None:
    """Helios: plan a home's battery and grid use against dynamic prices."""


for _command in (plan, check_config, db, report_cmd, backtest, prices_cmd, forecast):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
