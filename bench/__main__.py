"""Run every benchmark and print its ratios: ``make bench``."""

from __future__ import annotations

import importlib
import sys
import time

SUITES = ["bench.passport_bench", "bench.records_bench", "bench.scale_bench"]


def main() -> int:
    """Run each suite that exists; a suite that fails is reported, the others still run."""
    failed = False
    for name in SUITES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            print(f"{name}: not available ({error})")
            continue
        started = time.perf_counter()
        try:
            lines = module.run()
        except Exception as error:  # a benchmark must not hide the others' results
            print(f"{name}: failed: {error!r}")
            failed = True
            continue
        print(f"== {name} ({time.perf_counter() - started:.0f} s)")
        print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
