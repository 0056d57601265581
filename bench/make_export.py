"""Write a generated Spotify privacy export for benchmarks of the importer.

    python bench/make_export.py OUTDIR [--records 500000] [--years 10] [--account 100000]
                                       [--seed 1] [--zip] [--legacy]

The extended streaming history goes to OUTDIR/extended, the account data to OUTDIR/account,
and with --zip both are packed as Spotify delivers them, into OUTDIR/my_spotify_data.zip.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from export_generator import write_account, write_extended, write_zip


def describe(paths: list[Path]) -> None:
    """Print each file with its record count (for JSON arrays) and size."""
    for path in paths:
        with path.open(encoding="utf-8") as handle:
            content = json.load(handle)
        count = f"{len(content):>8,} records" if isinstance(content, list) else " " * 16
        print(f"  {path.name:<48} {count} {path.stat().st_size / 1e6:>8.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--records", type=int, default=500_000, help="extended-history streams")
    parser.add_argument("--years", type=float, default=10.0)
    parser.add_argument("--account", type=int, default=100_000,
                        help="account-data streams (0 for none)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--zip", action="store_true", help="also pack both into a zip")
    parser.add_argument("--legacy", action="store_true", help="pre-2023 endsong_<n>.json files")
    args = parser.parse_args()

    started = time.perf_counter()
    extended = write_extended(args.outdir / "extended", args.records, args.years, seed=args.seed,
                              legacy=args.legacy)
    print(f"extended streaming history, {time.perf_counter() - started:.1f} s:")
    describe(extended)
    account = []
    if args.account:
        started = time.perf_counter()
        account = write_account(args.outdir / "account", args.account, seed=args.seed,
                                extended_records=args.records, years=args.years)
        print(f"account data, {time.perf_counter() - started:.1f} s:")
        describe(account)
    if args.zip:
        archive = write_zip(args.outdir / "my_spotify_data.zip", extended=extended,
                            account=account)
        print(f"zip: {archive} {archive.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
