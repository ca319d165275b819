#!/usr/bin/env python3
"""Where a proxy's CPU per transaction goes: user and system time, and
context switches, of one running process (all its threads, from /proc)
while pgbench -S drives it. Side by side for PgBouncer and sqlgate, it
shows whether a gap is the kernel's (socket hops, wake-ups) or the
proxy's own code.

    python3 benches/cpu_split.py PID PORT simple|prepared SECONDS LABEL

Runs `pgbench -n -S -M MODE -c 16 -j 2` against 127.0.0.1:PORT, database
sqlgate_bench, user postgres (PGPASSWORD from the environment), and prints
one line: TPS, user and system µs per transaction, voluntary and
involuntary context switches per transaction.
"""
import glob
import os
import re
import subprocess
import sys

pid, port, mode, secs, label = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
hz = os.sysconf("SC_CLK_TCK")


def snap():
    user = system = voluntary = involuntary = 0
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            fields = open(task + "/stat").read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
            status = open(task + "/status").read()
            voluntary += int(re.search(r"\bvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
            involuntary += int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))
        except (OSError, AttributeError):
            pass  # a thread that ended meanwhile
    return user, system, voluntary, involuntary


before = snap()
out = subprocess.run(
    ["pgbench", "-n", "-S", "-M", mode, "-c", "16", "-j", "2", "-T", str(secs),
     "-h", "127.0.0.1", "-p", port, "-U", "postgres", "sqlgate_bench"],
    capture_output=True, text=True, check=True,
).stdout
after = snap()
n = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
user, system, voluntary, involuntary = (b - a for a, b in zip(before, after))
us = lambda ticks: ticks * 1e6 / hz / n
print(f"{label:18} {mode:8} tps={n / secs:8.0f} user={us(user):6.2f} sys={us(system):6.2f} "
      f"total={us(user + system):6.2f} voluntary/txn={voluntary / n:5.3f} involuntary/txn={involuntary / n:5.3f}")
