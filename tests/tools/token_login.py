"""Logs in through the gateway with a token as the password, over TLS, and
prints one value, as a Python agent or pipeline would.

usage: token_login.py psycopg2|pymysql PORT USER DATABASE CA_FILE
The token is read from the TOKEN environment variable (never argv).
"""
import os
import sys

driver, port, user, database, ca = sys.argv[1:6]
token = os.environ["TOKEN"]
if driver == "psycopg2":
    import psycopg2

    conn = psycopg2.connect(
        host="127.0.0.1",
        port=int(port),
        user=user,
        password=token,
        dbname=database,
        sslmode="verify-full",
        sslrootcert=ca,
    )
elif driver == "pymysql":
    import pymysql

    conn = pymysql.connect(
        host="127.0.0.1",
        port=int(port),
        user=user,
        password=token,
        database=database,
        ssl={"ca": ca},
    )
else:
    sys.exit(f"unknown driver {driver}")
cur = conn.cursor()
cur.execute("SELECT CONCAT('in as ', 'token')")
print(cur.fetchone()[0])
conn.close()
