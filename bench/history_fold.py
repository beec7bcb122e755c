"""Benchmark: bringing the serving history state up to date after a daily import.

A synthetic broadcast history (``--airings``, default 1,000,000 airings with an actual: 2 channels,
5,000 programs, one airing every ~2 minutes) is held as a ``HistoryState``; a day of later airings is
then folded in (``HistoryState.appended``, what the importing process now does after the commit) and,
for comparison, the state is built again from every airing (``HistoryState.build``: the numpy part of
the rebuild a request paid after every import, without its query over the airings, which costs more).
Both results are checked equal. CPU time of this process; the machine is shared, so the load average is
printed too. Usage: ``SECRET_KEY=x .venv/bin/python bench/history_fold.py [--airings N]`` (rewrites the
``history-fold`` section of docs/benchmarks.md; runs on the embedded SQLite, migrated first).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECTION = "history-fold"


def _history(n: int, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, n * 2, n)), unit="min")
    return pd.DataFrame(
        {
            "program_id": rng.integers(1, 5_001, n).astype("int64"),
            "channel": rng.choice(["bench-a", "bench-b"], n).astype(object),
            "start": start,
            "audience": rng.lognormal(6.0, 0.5, n),
        }
    )


def _cpu(call: Callable[[], T]) -> tuple[T, float]:
    started = time.process_time()
    out = call()
    return out, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--airings", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bms.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from bench._report import write_section
    from registry.features import HistoryState

    frame = _history(args.airings)
    cut = frame["start"].max() - pd.Timedelta(days=1)
    old, day = frame[frame["start"] <= cut - pd.Timedelta(days=1)], frame[frame["start"] > cut]
    state = HistoryState.build(old, "audience")
    folded, fold_cpu = _cpu(lambda: state.appended(day))
    rebuilt, build_cpu = _cpu(lambda: HistoryState.build(pd.concat([old, day]), "audience"))
    assert folded is not None
    assert np.array_equal(folded.values, rebuilt.values)
    assert np.array_equal(folded.older_sum, rebuilt.older_sum)
    assert np.array_equal(folded.slot_values, rebuilt.slot_values, equal_nan=True)
    load = os.getloadavg()
    body = (
        "## Serving history state after a daily import (`bench/history_fold.py`)\n\n"
        f"{len(old):,} airings held, an import of {len(day):,} later airings (one day):\n\n"
        "| step | CPU s |\n|---|---|\n"
        f"| fold the import into the state (`HistoryState.appended`) | {fold_cpu:.3f} |\n"
        f"| build the state again from every airing (numpy part only, no query) | {build_cpu:.3f} |\n\n"
        f"Equal arrays either way. Load average at the end {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}."
    )
    print(body)
    write_section(SECTION, body)


if __name__ == "__main__":
    main()
