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


def states_save(states: dict[str, HistoryState], *, key: str) -> Path | None:
    """Write ``states`` under ``key`` (atomically: a reader sees the whole directory or none); the path,
    or None when states are kept in memory only. An existing directory of the key is left as it is."""
    root = store_root()
    if root is None:
        return None
    final = root / key
    if final.exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    partial.mkdir()
    try:
        meta: dict[str, Any] = {"format": FORMAT, "key": key, "targets": {}}
        for target, state in states.items():
            scalars: dict[str, Any] = {"through": None if state.through is None else int(state.through.astype("int64"))}
            for f in fields(HistoryState):
                value = getattr(state, f.name)
                if f.name in _INDEXES:
                    names = np.array(list(value), dtype="int64" if f.name == "program_index" else str)
                    np.save(partial / f"{target}.{f.name}.npy", names, allow_pickle=False)
                elif isinstance(value, np.ndarray):
                    np.save(partial / f"{target}.{f.name}.npy", np.ascontiguousarray(value), allow_pickle=False)
            meta["targets"][target] = scalars
        (partial / _META).write_text(json.dumps(meta))
        try:
            partial.rename(final)
        except OSError:  # another process wrote the same version first: theirs is the same
            shutil.rmtree(partial, ignore_errors=True)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _prune(root, keep=final)
    return final


def states_load(*, key: str) -> dict[str, HistoryState] | None:
    """The states written under ``key``, their arrays mapped read-only; None when there are none, or when
    they do not read (the directory is removed: the caller builds them again and writes them)."""
    root = store_root()
    if root is None:
        return None
    path = root / key
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
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # A directory appears whole (renamed into place), so one that does not read is damaged: remove
        # it, so the process that builds the states again can write them.
        logger.warning("history states %s: not readable, building them again", key, exc_info=True)
        shutil.rmtree(path, ignore_errors=True)
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
