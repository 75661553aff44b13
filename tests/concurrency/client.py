"""A client process of a database that the tests drive line by line, or that runs transactions in a loop.

    python tests/concurrency/client.py DB                 # then, on stdin, one SQL statement per line
    python tests/concurrency/client.py DB --increment N   # N transactions: UPDATE counter SET n = n + 1

Driven: it opens DB with `agentlens.open` and prints `owner` or `remote` (whether it holds the database or
is a client of the process that does); then for each statement it reads it prints `ok JSON-ROWS` or
`error TYPE: MESSAGE` (the exception the statement raised, as a user's code would catch it). In the loop
mode it prints `done N` after N committed transactions, or the first error and exits 1.
"""

from __future__ import annotations

import json
import sys

import agentlens


def main() -> None:
    db = sys.argv[1]
    lens = agentlens.open(db)
    if sys.argv[2:3] == ["--increment"]:
        n = int(sys.argv[3])
        for _ in range(n):
            try:
                lens.con.execute("BEGIN")
                lens.con.execute("UPDATE counter SET n = n + 1")
                lens.con.execute("COMMIT")
            except Exception as e:
                print(f"error {type(e).__name__}: {e}", flush=True)
                sys.exit(1)
        print(f"done {n}", flush=True)
        lens.close()
        return
    print("remote" if lens.remote is not None else "owner", flush=True)
    for line in sys.stdin:
        sql = line.strip()
        if not sql:
            continue
        try:
            rows = lens.con.execute(sql).fetchall()
        except Exception as e:
            print(f"error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
            continue
        print("ok " + json.dumps(rows, default=str), flush=True)
    lens.close()


if __name__ == "__main__":
    main()
