"""What ORMs and migration tools do with a database, run through sqlgate.

Usage: alembic_check.py <sqlalchemy url> <schema name or ->

Reflects the database with SQLAlchemy (MetaData().reflect(), the
inspector's table, column, index and view calls) and runs `alembic check`
(alembic's own command, with an environment made in a temporary
directory) against a model of the test schema: it fails when the database
differs from the model, or when any reflection query fails. Prints one
JSON object with what it saw.
"""

import json
import os
import sys
import tempfile

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

url = sys.argv[1]
engine = sa.create_engine(url)
inspector = sa.inspect(engine)
# Other tests create and drop tables in the same database meanwhile: only
# this test's objects (tool_*) are reflected in detail.
ours = lambda name: name.startswith("tool_")
tables = sorted(t for t in inspector.get_table_names() if ours(t))
views = sorted(v for v in inspector.get_view_names() if ours(v))
columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in tables}
indexes = {t: [i["name"] for i in inspector.get_indexes(t)] for t in tables}
view_definitions = {v: inspector.get_view_definition(v) for v in views}
reflected = sa.MetaData()
reflected.reflect(engine, only=lambda name, _meta: ours(name))

model = sa.MetaData()
sa.Table(
    "tool_people",
    model,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("email", sa.String(80)),
    sa.Column("status", sa.String(20)),
)
sa.Index("tool_people_status", model.tables["tool_people"].c.status)

env = """
from alembic import context
config = context.config
connectable = config.attributes["engine"]
with connectable.connect() as connection:
    context.configure(connection=connection,
                      target_metadata=config.attributes["model"],
                      include_name=lambda name, type_, parent: type_ != "table" or name in ("tool_people",))
    with context.begin_transaction():
        context.run_migrations()
"""
with tempfile.TemporaryDirectory() as d:
    os.makedirs(os.path.join(d, "versions"))
    with open(os.path.join(d, "env.py"), "w") as f:
        f.write(env)
    with open(os.path.join(d, "script.py.mako"), "w") as f:
        f.write("")
    cfg = Config()
    cfg.set_main_option("script_location", d)
    cfg.attributes["engine"] = engine
    cfg.attributes["model"] = model
    command.check(cfg)

print(
    json.dumps(
        {
            "tables": tables,
            "views": views,
            "columns": columns,
            "indexes": indexes,
            "view_definitions": view_definitions,
            "reflected": sorted(reflected.tables),
        }
    )
)
