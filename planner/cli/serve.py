"""``helios serve``: the local web app and JSON API (live status, plan, savings, pause).

See :mod:`planner.serve.app` for the routes and :mod:`planner.serve.security` for the token
and the request checks; docs/serve.md for the whole story.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from executor.errors import ConfigError as ExecutorConfigError
from planner.cli.common import CONFIG_OPTION, fail, load_config, warn
from planner.core.errors import HeliosError
from planner.serve import security
from planner.serve.app import App, make_server
from planner.serve.data import Home
from planner.serve.mqtt import Publisher


@click.command("serve")
@CONFIG_OPTION
@click.option("--demo", is_flag=True,
              help="Use the built-in demo config when there is no config file (the folder "
                   "where `helios plan --demo` ran).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 = every interface: give the token only to "
                   "people on your network you trust).")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0 = any free port).")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME",
              help="A host name the browser may use besides IP addresses and localhost "
                   "(e.g. helios.local); repeatable.")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="Token file (default: helios-serve.token in the executor's state_dir), "
                   "used when secrets.yaml has no serve_token.")
@click.option("--poll-s", type=click.FloatRange(0.2, 600), default=3.0, show_default=True,
              help="How often the live page refreshes. [s]")
def serve(config_path: str | None, demo: bool, host: str, port: int,
          allow_hosts: tuple[str, ...], token_file: str | None, poll_s: float) -> None:
    """Serve the local web app and JSON API (read-only, except pause/resume with the token)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg = load_config(config_path, demo)
        home = Home.from_config(cfg)
        config_dir = os.path.dirname(os.path.abspath(cfg.source)) \
            if cfg.source and os.path.isfile(cfg.source) else home.state_dir
        token = security.load_token(
            config_dir, token_file or os.path.join(home.state_dir, security.TOKEN_FILE))
        app = App(home, token, allowed_hosts=allow_hosts, poll_s=poll_s, demo=demo)
        server = make_server(app, host, port)
        publisher = Publisher(cfg.mqtt, home, version=app.version) if cfg.mqtt else None
    except HeliosError as exc:
        fail(exc)
    except ExecutorConfigError as exc:
        click.echo(f"helios: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"helios: error: cannot listen on {host}:{port}: {exc.strerror or exc}",
                   err=True)
        sys.exit(5)
    if token.created:
        click.echo(f"created a new API token in {token.origin} (mode 0600); "
                   "read it there to pause/resume from the page or the API")
    else:
        click.echo(f"API token from {token.origin}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(f"listening on {host}: anyone who can reach this port can read the status "
             "and plans (changes still need the token)")
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"serving http://{shown}:{app.port}/ (schedule {home.schedule_path}, "
               f"history {home.history.store.safe_url}, pause file {home.pause_path}); "
               "Ctrl-C stops", nl=True)
    if publisher is not None:
        m = cfg.mqtt
        click.echo(f"publishing to MQTT {m.host}:{m.port} every {m.interval_s:g} s (topics "
                   f"{m.topic_prefix}/..., discovery "
                   f"{m.discovery_prefix + '/...' if m.discovery_prefix else 'off'})")
        publisher.start()
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if publisher is not None:
            publisher.stop()
        server.server_close()
