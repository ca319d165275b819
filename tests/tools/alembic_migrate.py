"""A migration as a CI pipeline runs it with Alembic's operations, in one
transaction: add a column, then drop a table (the destructive step a
policy holds for approval). Prints "migrated" once the transaction has
committed, or the error."""
import sys

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

engine = sa.create_engine(sys.argv[1])
try:
    with engine.begin() as conn:
        op = Operations(MigrationContext.configure(conn))
        op.add_column("mig_people", sa.Column("nick", sa.String(20)))
        op.drop_table("mig_old")
except Exception as e:  # the gateway's refusal, as the pipeline sees it
    print(f"failed: {e}")
    sys.exit(1)
print("migrated")
