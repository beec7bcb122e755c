"""A training run's airings and datasets, built once per process and reused by the run's next jobs.

Every job of a run trains on the same airings (``training_run_prepare`` records each target's
fingerprint and a job refuses data that differs). Reading them and adding the history features is the
same work for the six algorithms of a target: at a million airings it takes longer than fitting some of
the models. So a process (a Celery pool process, or the one process of an eager run) keeps the frame of
the run it last worked on and its latest ``MAX_DATASETS`` featured targets; a job of another run drops
them first, so at most one run's data is held. A copy is never needed: the training code does not
modify the frames it is given.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import pandas as pd

from registry.features import airings_frame
from registry.models import TrainingRun
from registry.training import Dataset, training_airings, training_dataset

# Featured datasets kept per process. The jobs are queued target by target, so a pool process mostly
# takes the same target's jobs one after another; two covers the change from one target to the next.
MAX_DATASETS = 2


def _key(run: TrainingRun) -> str:
    # The id alone could name another run after a database is restored or a test rolls back.
    return f"{run.pk}@{run.created_at.isoformat() if run.created_at else ''}"


@dataclass
class _Held:
    run: str
    frame: pd.DataFrame | None = None
    datasets: OrderedDict[str, Dataset] = field(default_factory=OrderedDict)
    builds: int = 0  # datasets built (not reused) for this run in this process: tests and benches read it


_lock = threading.Lock()
_held: _Held | None = None


def _for_run(run: TrainingRun) -> _Held:
    global _held
    key = _key(run)
    if _held is None or _held.run != key:
        _held = _Held(run=key)  # the previous run's data is released here
    return _held


def run_frame(run: TrainingRun) -> pd.DataFrame:
    """The airings a run trains on (``airings_frame(training_airings())``), read once per process."""
    with _lock:
        held = _for_run(run)
        if held.frame is None:
            held.frame = airings_frame(training_airings())
        return held.frame


def run_dataset(run: TrainingRun, target: str, *, frame: pd.DataFrame | None = None) -> Dataset:
    """``target``'s dataset of the run, built from ``frame`` (default: ``run_frame``) once per process."""
    with _lock:
        held = _for_run(run)
        if frame is not None and held.frame is None:
            held.frame = frame
        dataset = held.datasets.get(target)
        if dataset is not None:
            held.datasets.move_to_end(target)
            return dataset
    source = frame if frame is not None else run_frame(run)
    dataset = training_dataset(target=target, frame=source)
    with _lock:
        held = _for_run(run)
        held.datasets[target] = dataset
        held.builds += 1
        while len(held.datasets) > MAX_DATASETS:
            held.datasets.popitem(last=False)
    return dataset


def builds(run: TrainingRun) -> int:
    """How many datasets this process built for the run (0 when it holds another run's data)."""
    with _lock:
        return _held.builds if _held is not None and _held.run == _key(run) else 0


def release(run: TrainingRun) -> None:
    """Release the held data if it is ``run``'s (no job of the run is left for this process)."""
    global _held
    with _lock:
        if _held is not None and _held.run == _key(run):
            _held = None


def forget() -> None:
    """Release whatever is held (tests)."""
    global _held
    with _lock:
        _held = None
