#!/usr/bin/env python3
"""Deterministic inputs for the heapgate benchmarks (standard library only).

Usage: gen_data.py OUTDIR

Writes, each only when missing or older than this script:
  OUTDIR/data-60000.json   JSON array of 60,000 objects (~9 MB), the jq input
  OUTDIR/data-6000.json    the same shape with 6,000 objects (BENCH_QUICK)
  OUTDIR/sqlite-200000.sql the sqlite3 script: 200,000-row table + index + queries
  OUTDIR/sqlite-20000.sql  the same with 20,000 rows (BENCH_QUICK)
"""
import json
import os
import sys

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
         "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
         "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Quebec", "Perth", "Tunis"]


class Lcg:
    """A fixed pseudo-random sequence, so the file is byte-for-byte the same everywhere."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFF

    def next(self, bound):
        self.state = (self.state * 1103515245 + 12345) & 0xFFFFFFFF
        return (self.state >> 8) % bound


def json_objects(count):
    rng = Lcg(20240611)
    for i in range(count):
        first, last = WORDS[rng.next(len(WORDS))], WORDS[rng.next(len(WORDS))]
        yield {
            "id": i,
            "name": f"{first.title()} {last.title()} {i}",
            "active": rng.next(3) != 0,
            "score": round(rng.next(1000000) / 1000.0, 3),
            "tags": [WORDS[rng.next(len(WORDS))] for _ in range(rng.next(6))],
            "address": {"city": CITIES[rng.next(len(CITIES))], "zip": f"{rng.next(100000):05d}"},
            "history": [rng.next(1000) for _ in range(rng.next(5))],
        }


def write_json(path, count):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("[\n")
        for i, obj in enumerate(json_objects(count)):
            if i:
                f.write(",\n")
            f.write(json.dumps(obj, separators=(",", ":")))
        f.write("\n]\n")
    os.replace(tmp, path)


SQL = """\
-- heapgate benchmark: {rows}-row in-memory table, an index, a few queries.
CREATE TABLE items(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL, name TEXT NOT NULL,
                   price REAL NOT NULL, note TEXT);
WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < {rows})
INSERT INTO items(id, grp, name, price, note)
  SELECT x, x % 97, 'item-' || x || '-' || (x * 7919 % 10007),
         (x * 2654435761 % 1000003) / 100.0,
         CASE WHEN x % 5 = 0 THEN NULL ELSE printf('note %08d for item %d', x * 31 % 99991, x) END
  FROM seq;
CREATE INDEX items_price ON items(price);
SELECT count(*), sum(price) FROM items;
SELECT grp, count(*), round(avg(price), 2), max(name) FROM items GROUP BY grp ORDER BY 3 DESC LIMIT 5;
SELECT count(*), min(id), max(id) FROM items WHERE price BETWEEN 1000.0 AND 1500.0;
SELECT id, name, price FROM items WHERE price > 9990.0 ORDER BY price LIMIT 5;
SELECT count(*), count(DISTINCT substr(note, 6, 5)) FROM items WHERE note IS NOT NULL AND grp < 10;
"""


def write_sql(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(SQL.format(rows=rows))
    os.replace(tmp, path)


def fresh(path):
    return os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(__file__)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_data.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for count in (60000, 6000):
        path = os.path.join(out, f"data-{count}.json")
        if not fresh(path):
            print(f"  gen   {os.path.basename(path)}", file=sys.stderr)
            write_json(path, count)
    for rows in (200000, 20000):
        path = os.path.join(out, f"sqlite-{rows}.sql")
        if not fresh(path):
            print(f"  gen   {os.path.basename(path)}", file=sys.stderr)
            write_sql(path, rows)


if __name__ == "__main__":
    main()
