"""Make market_app/data/us-indices-daily.csv.gz, the dataset the service ships (docs/datasets.md),
from the example data of the `arch` package (NCSA license): the S&P 500 and NASDAQ Composite daily
bars, 1999-01-04 to 2018-12-31, as symbols SPX and IXIC in the service's bar format.

Usage: .venv/bin/python tools/datasets/us_indices_from_arch.py ARCH_WHEEL
(a wheel of arch 8.0.0: `pip download --no-deps --only-binary=:all: arch==8.0.0`). The wheel's
SHA-256 is checked, so the file is made from exactly what was reviewed. The output is gzip with a
fixed mtime: the same wheel gives the same bytes.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
import zipfile
from datetime import datetime
from pathlib import Path

WHEEL_SHA256 = "975ec3bdf7926335742ac362251fafe32b448b8f194dead062f22a00beef772d"  # arch 8.0.0, cp311 manylinux
SOURCES = (("SPX", "arch/data/sp500/sp500.csv.gz"), ("IXIC", "arch/data/nasdaq/nasdaq.csv.gz"))
OUTPUT = Path(__file__).resolve().parents[2] / "market_app" / "data" / "us-indices-daily.csv.gz"


def bars_of(wheel: zipfile.ZipFile, symbol: str, member: str) -> list[list[str]]:
    text = gzip.decompress(wheel.read(member)).decode()
    return [
        [
            datetime.strptime(row["Date"], "%m/%d/%Y").date().isoformat(),  # a daily bar: its date, UTC
            symbol,
            row["Open"],
            row["High"],
            row["Low"],
            row["Close"],
            str(int(float(row["Volume"]))),
        ]
        for row in csv.DictReader(io.StringIO(text))
    ]


def main(wheel_path: str) -> None:
    digest = hashlib.sha256(Path(wheel_path).read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        sys.exit(f"{wheel_path}: SHA-256 {digest}, expected arch 8.0.0's {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel_path) as wheel:
        rows = [row for symbol, member in SOURCES for row in bars_of(wheel, symbol, member)]
    rows.sort(key=lambda row: (row[0], row[1]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", "symbol", "open", "high", "low", "close", "volume"])
    writer.writerows(rows)
    OUTPUT.write_bytes(gzip.compress(out.getvalue().encode(), compresslevel=9, mtime=0))
    print(f"{OUTPUT}: {len(rows)} bars")


if __name__ == "__main__":
    main(*sys.argv[1:])
