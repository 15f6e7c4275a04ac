"""Alembic environment for the plan history database.

Helios runs Alembic programmatically (:class:`planner.history.store.Store`) and hands it an open
connection in ``config.attributes["connection"]``; the URL fallback serves a developer who
runs ``alembic -x url=sqlite:///helios.db ...`` with a hand-made alembic.ini.
"""

from __future__ import annotations

from alembic import context

from planner.history import store

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=store.metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade head --sql``)."""
    url = context.get_x_argument(as_dictionary=True).get("url") or \
        config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=store.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the connection Helios passed (or a new one from the URL)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or \
        config.get_main_option("sqlalchemy.url")
    engine = store.make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
