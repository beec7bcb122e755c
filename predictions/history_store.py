"""The serving history states on disk: one directory per broadcast data version, mapped by every process.

Building the states reads every airing with an actual (at 5M airings: minutes and over a GB per process).
The first process that needs a data version's states builds them and writes them here (plain ``.npy``
arrays and a JSON file, never pickle); every other process, and the same one after a restart, maps the
arrays in (``np.load(mmap_mode="r")``): a warm-up of a fraction of a second whose memory is shared pages
of the file, of which a prediction touches a few. An import folded into the states in its own process
(``predictions.lookups``) writes the new version's directory the same way.

A directory is named by the data version's stamp (``programs.selectors.data_version_stamp``: id and the
instant it was recorded) and a digest of what else decides the arrays (this format and the target
ranges that clean the values), so a recreated database or a changed setting never reads another's
states. Only the newest few directories are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from registry.features import HistoryState

logger = logging.getLogger(__name__)

FORMAT = 1
KEEP = 3  # directories kept: the current version's and a few before it (a process may still map them)
_INDEXES = ("program_index", "slot_index", "pair_index")
_META = "states.json"


def store_root() -> Path | None:
    root = settings.HISTORY_STATE_ROOT
    return Path(root) if root else None


def states_key(stamp: str) -> str:
    """The directory name of the states of the data version ``stamp``."""
    ranges = json.dumps({t: list(r) for t, r in sorted(settings.TARGET_RANGES.items())})
    digest = hashlib.sha256(f"{FORMAT}|{ranges}".encode()).hexdigest()[:12]
    return f"v{stamp}-{digest}"


class StatesWriter:
    """Writes one data version's states target by target into a hidden directory of the store, so a build
    holds one target's arrays at a time; ``commit`` renames the directory into place (atomically: a reader
    sees the whole directory or none), ``discard`` removes it."""

    def __init__(self, key: str) -> None:
        root = store_root()
        if root is None:
            raise ValueError("no history state store (HISTORY_STATE_ROOT is empty)")
        self.root, self.key, self.final = root, key, root / key
        root.mkdir(parents=True, exist_ok=True)
        self.partial = root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        self.partial.mkdir()
        self._meta: dict[str, Any] = {"format": FORMAT, "key": key, "targets": {}}

    def write(self, target: str, state: HistoryState) -> None:
        try:
            through = None if state.through is None else int(state.through.astype("int64"))
            for f in fields(HistoryState):
                value = getattr(state, f.name)
                if f.name in _INDEXES:
                    names = np.array(list(value), dtype="int64" if f.name == "program_index" else str)
                    np.save(self.partial / f"{target}.{f.name}.npy", names, allow_pickle=False)
                elif isinstance(value, np.ndarray):
                    np.save(self.partial / f"{target}.{f.name}.npy", np.ascontiguousarray(value), allow_pickle=False)
            self._meta["targets"][target] = {"through": through}
            (self.partial / _META).write_text(json.dumps(self._meta))
        except BaseException:
            self.discard()
            raise

    def read(self) -> dict[str, HistoryState]:
        """The states written so far, mapped (they stay readable after ``discard``: the pages live until
        the process lets go of them)."""
        states = _read(self.partial, key=self.key)
        if states is None:
            raise OSError(f"history states {self.key}: the partial directory does not read")
        return states

    def commit(self) -> Path:
        try:
            self.partial.rename(self.final)
        except OSError:  # another process wrote the same version first: theirs is the same
            self.discard()
        _prune(self.root, keep=self.final)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


def states_save(states: dict[str, HistoryState], *, key: str) -> Path | None:
    """Write ``states`` under ``key`` (atomically: a reader sees the whole directory or none); the path,
    or None when states are kept in memory only. An existing directory of the key is left as it is."""
    root = store_root()
    if root is None:
        return None
    if (root / key).exists():
        return root / key
    states_write(states.items(), key=key)
    return root / key


def states_write(
    states: Iterable[tuple[str, HistoryState]], *, key: str, keep: Callable[[], bool] = lambda: True
) -> tuple[dict[str, HistoryState], bool]:
    """Write each (target, state) as it comes (the caller may build one at a time), then rename the directory
    into place under ``key`` if ``keep()`` still holds; the written states mapped, and whether they were kept.
    Nothing partial stays behind on an error."""
    writer = StatesWriter(key)
    try:
        for target, state in states:
            writer.write(target, state)
            del state
        written = writer.read()
        if not keep():
            writer.discard()
            return written, False
        writer.commit()
    except BaseException:
        writer.discard()
        raise
    return written, True


def states_load(*, key: str) -> dict[str, HistoryState] | None:
    """The states written under ``key``, their arrays mapped read-only; None when there are none, or when
    they do not read (the directory is removed: the caller builds them again and writes them)."""
    root = store_root()
    if root is None:
        return None
    path = root / key
    states = _read(path, key=key)
    if states is None and path.exists():
        # A directory appears whole (renamed into place), so one that does not read is damaged: remove
        # it, so the process that builds the states again can write them.
        logger.warning("history states %s: not readable, building them again", key)
        shutil.rmtree(path, ignore_errors=True)
    return states


def _read(path: Path, *, key: str) -> dict[str, HistoryState] | None:
    try:
        meta = json.loads((path / _META).read_text())
        if meta.get("format") != FORMAT or meta.get("key") != key:
            return None
        states: dict[str, HistoryState] = {}
        for target, scalars in meta["targets"].items():
            values: dict[str, Any] = {"target": target}
            for f in fields(HistoryState):
                if f.name in ("target", "through"):
                    continue
                file = path / f"{target}.{f.name}.npy"
                if f.name in _INDEXES:
                    names = np.load(file, allow_pickle=False).tolist()
                    values[f.name] = {name: i for i, name in enumerate(names)}
                else:
                    values[f.name] = np.load(file, mmap_mode="r", allow_pickle=False)
            through = scalars["through"]
            values["through"] = None if through is None else np.datetime64(int(through), "m")
            states[target] = HistoryState(**values)
        return states
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _prune(root: Path, *, keep: Path) -> None:
    """Remove all but the ``KEEP`` newest directories (``keep`` always stays). A process that still maps
    a removed directory's files keeps reading them (the pages stay until it lets go)."""
    try:
        dirs = sorted(
            (d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
            key=lambda d: d.stat().st_mtime,
            reverse=True,
        )
    except OSError:
        return
    for old in dirs[KEEP:]:
        if old != keep:
            shutil.rmtree(old, ignore_errors=True)
