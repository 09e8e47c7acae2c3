"""``python -m bench.faults`` (``make faults``): the fault matrix against real processes."""

from __future__ import annotations

import argparse
import asyncio
import logging

from bench.faults import matrix
from bench.faults.scenarios import SCENARIOS, SHORT
from protocols.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    ap.add_argument("scenarios", nargs="*", help=f"default: all ({', '.join(SCENARIOS)})")
    ap.add_argument("--short", action="store_true", help=f"only {', '.join(SHORT)}, 6 alarms each")
    ap.add_argument("--per", type=int, default=30, help="alarms per scenario (each on its own gateway)")
    ap.add_argument(
        "--deadline", type=float, default=120.0, help="seconds to wait for the counts after a fault"
    )
    ap.add_argument("--no-doc", action="store_true", help="print only; leave docs/reliability.md alone")
    a = ap.parse_args(argv)
    configure_logging(logging.WARNING, loud={"bench.faults": logging.INFO})
    names = list(SHORT) if a.short else (a.scenarios or list(SCENARIOS))
    per = 6 if a.short else a.per
    outcomes = asyncio.run(matrix.run(names, per, a.deadline))
    if a.no_doc:
        print(matrix.table(outcomes))
    else:
        matrix.write(outcomes)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
