"""Latency-table keys (a unit's signature at its input size, with the run's batch, dtype and
memory format) and the table file: CSV rows appended under a lock, never rewritten."""

from __future__ import annotations

import csv
import fcntl
import functools
import inspect
import io
import math
import os
import re
import statistics
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.blocks.base import Unit
from nas.config import Network
from nas.cost.complexity import Cx
from nas.latency.profile import (
    DTYPES,
    MEMORY_FORMATS,
    LatencyError,
    OtherDeviceWarning,
    Profile,
    TableWarning,
)
from nas.network import Part, layout, parts

COLUMNS = ("key", "batch", "dtype", "memory_format", "mean_ms", "median_ms", "iqr_ms", "repeats",
           "probe_ms", "measured_at")
SIGNATURE = re.compile(r"^\w+\(.*\)@\d+x\d+$")
PROBE_ELASTICITY = 0.5  # how far units follow the probe's speed (nas/latency/__init__.py)
NOISE_SESSIONS = 10  # sessions that measured units again, before a table states its noise
PART_KEYS_CACHED = 16_384  # parts whose keys placed_keys keeps (about 4 kB each)
CHI2_MEDIAN = 0.4549  # the median of a chi-squared variable with one degree of freedom
SESSION_CORRELATION = 0.3  # between the sessions of one sum (chosen: benchmarks/README.md)


@dataclass(frozen=True)
class Key:
    signature: str
    batch: int
    dtype: str
    memory_format: str


@dataclass(frozen=True)
class Entry:
    key: Key
    mean_ms: float
    median_ms: float
    iqr_ms: float
    repeats: int
    probe_ms: float  # the probe network's time when and where the entry was measured
    measured_at: str
    sessions: int = 1  # the measurements pooled in it (rows of the table file)

    def pooled(self, other: Entry) -> Entry:
        """This entry and a later measurement of the same unit as one: the geometric means of
        their times and probes, weighted by their sessions, so that reading the pool at any speed
        gives the geometric mean of its measurements read at that speed; the mean of their IQRs,
        the sum of their repeats, and the time of the row read last."""
        n, m = self.sessions, other.sessions

        def mean(a: float, b: float) -> float:
            return math.exp((n * math.log(a) + m * math.log(b)) / (n + m))

        return Entry(self.key, mean(self.mean_ms, other.mean_ms),
                     mean(self.median_ms, other.median_ms),
                     (n * self.iqr_ms + m * other.iqr_ms) / (n + m), self.repeats + other.repeats,
                     mean(self.probe_ms, other.probe_ms), other.measured_at, n + m)

    def ms_at(self, probe_ms: float) -> float:
        """The mean at the speed where the probe takes ``probe_ms``: scaled by the probe's
        change to the power PROBE_ELASTICITY."""
        return self.mean_ms * (probe_ms / self.probe_ms) ** PROBE_ELASTICITY

    def row(self) -> tuple:
        """The entry as a row of the table file: one measurement, never a pool."""
        if self.sessions != 1:
            raise ValueError(f"{self.key.signature}: a pooled entry is written as its rows")
        k = self.key
        return (k.signature, k.batch, k.dtype, k.memory_format, f"{self.mean_ms:.6g}",
                f"{self.median_ms:.6g}", f"{self.iqr_ms:.3g}", self.repeats,
                f"{self.probe_ms:.6g}", self.measured_at)


@dataclass(frozen=True)
class Placed:
    """A unit of a network with the input it gets there (channels, height, width)."""

    name: str
    unit: Unit
    shape: tuple[int, int, int]

    def signature(self) -> str:
        """Every argument of the unit's constructor, defaults applied, but keyword-only options
        at their default (so tables stay valid as families gain options)."""
        typed = tuple((k, type(v), v) for k, v in self.unit.kwargs.items())  # 1, 1.0, True
        return f"{_arguments(self.unit.cls, typed)}@{self.shape[1]}x{self.shape[2]}"

    def key(self, profile: Profile) -> Key:
        return Key(self.signature(), profile.batch, profile.dtype, profile.memory_format)


@functools.lru_cache(maxsize=65_536)  # units recur across networks: a screen keys thousands
def _arguments(cls: type, kwargs: tuple[tuple[str, type, Any], ...]) -> str:
    """``cls(arguments)`` as :meth:`Placed.signature` writes it, of (name, type, value)
    triples: equal values of other types (1, 1.0, True) are written differently, so they are
    cached apart."""
    signature = inspect.signature(cls)
    parameters = signature.parameters
    bound = signature.bind(**{k: v for k, _, v in kwargs})
    bound.apply_defaults()
    args = ",".join(f"{k}={v}" for k, v in bound.arguments.items()
                    if not (parameters[k].kind is inspect.Parameter.KEYWORD_ONLY
                            and v == parameters[k].default))
    return f"{cls.__name__}({args})"


def placed_keys(config: Network, profile: Profile, resolution: int = 224,
                num_classes: int = 1000) -> tuple[Key, ...]:
    """The keys of :func:`placed_units`, from the cached keys of the network's parts (a screen
    keys thousands of networks, and parts recur across them)."""
    keys: tuple[Key, ...] = ()
    h = w = resolution
    for part in parts(config, num_classes):
        types = (*map(type, vars(part.spec).values()), type(part.w_in), type(part.num_classes))
        part_keys, h, w = _part_keys(part, types, h, w, profile)
        keys += part_keys
    return keys


@functools.lru_cache(maxsize=PART_KEYS_CACHED)
def _part_keys(part: Part, types: tuple[type, ...], h: int, w: int, profile: Profile
               ) -> tuple[tuple[Key, ...], int, int]:
    """A part's keys entered at size h x w, and the size it leaves. Equal parts with values of
    other types (1, 1.0) are cached apart by ``types``, their values' types, since signatures
    write them differently."""
    cx = Cx(h, w)
    return tuple(p.key(profile) for p in _placed(part.named_units(), cx)), cx.h, cx.w


def placed_units(config: Network, resolution: int = 224, num_classes: int = 1000) -> list[Placed]:
    """The units of a network in order, each with its input size."""
    return _placed(layout(config, num_classes), Cx(resolution, resolution))


def _placed(units: Iterable[tuple[str, Unit]], cx: Cx) -> list[Placed]:
    """Named units entered at ``cx``'s size, each with its input; ``cx`` is left after them."""
    placed = []
    for name, unit in units:
        placed.append(Placed(name, unit, (unit.kwargs.get("w_in", 3), cx.h, cx.w)))
        unit.complexity(cx)
    return placed


class Table:
    """The entries of one device profile, read from and appended to its CSV file; the rows of
    one unit are pooled into its entry (:meth:`Entry.pooled`)."""

    def __init__(self, path: str | Path, profile: Profile):
        self.path = Path(path)
        self.profile = profile
        self.entries: dict[Key, Entry] = {}
        self.rows: dict[Key, list[Entry]] = {}  # the measurements pooled in each entry
        self._shares: dict[Key, dict[str, float]] = {}  # session_shares(), until a new row
        self._noise: float | None = None  # session_noise() ...
        self._noise_version = -1  # ... as of this version
        self._offset = 0  # bytes of the file read so far
        self._lines = 0
        self.measured_on: str | None = None  # the file's fingerprint, once read
        self.refresh()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: Key) -> Entry | None:
        return self.entries.get(key)

    @property
    def version(self) -> int:
        """The lines of the file read so far: what the table predicts changes only with it, as
        its entries and rows change only by ``refresh`` (which ``add`` ends with)."""
        return self._lines

    def typical_probe_ms(self) -> float:
        """The median probe time of the entries measured with this table's profile: the speed
        predictions are given at unless told otherwise."""
        p = self.profile
        probes = [e.probe_ms for k, e in self.entries.items()
                  if (k.batch, k.dtype, k.memory_format) == (p.batch, p.dtype, p.memory_format)]
        if not probes:
            raise LatencyError(f"{self.path}: no entries for batch {p.batch}, {p.dtype}, "
                               f"{p.memory_format}")
        return statistics.median(probes)

    def session_noise(self) -> float | None:
        """How far one timing session strays in measuring a network: the standard deviation of
        the log of its sum. A session is the rows measured together (one ``measured_at``); it
        is compared, over the units the table also holds from other sessions, with the pool of
        their other rows, both read at the typical speed. The robust estimate (the median
        squared log ratio), discounted for the pools' own noise; None until NOISE_SESSIONS
        sessions can be compared so."""
        if self._noise_version != self.version:
            self._noise, self._noise_version = self._session_noise(), self.version
        return self._noise

    def session_shares(self, key: Key) -> dict[str, float]:
        """Each session's share of the unit's entry (``measured_at``: its rows over all)."""
        shares = self._shares.get(key)
        if shares is None:
            rows = self.rows[key]
            shares = self._shares[key] = {}
            for row in rows:
                shares[row.measured_at] = shares.get(row.measured_at, 0.0) + 1 / len(rows)
        return shares

    def independent_sessions(self, parts: Iterable[tuple[Key, float]]) -> float:
        """How many independent sessions a sum of entries, ``parts`` of (key, milliseconds at
        one speed), is worth: one over the sum of the squared shares that each session has
        of it. Units measured in one session share its noise; a unit pooled from many averages
        theirs out. The sum's noise is one session's (:meth:`session_noise`) over the square
        root of this, as far as sessions are independent (:meth:`sum_noise`)."""
        parts = list(parts)
        total = sum(ms for _, ms in parts)
        shares: dict[str, float] = {}
        for key, ms in parts:
            for at, share in self.session_shares(key).items():
                shares[at] = shares.get(at, 0.0) + ms / total * share
        return 1 / sum(share * share for share in shares.values())

    def sum_noise(self, parts: Iterable[tuple[Key, float]],
                  correlation: float = SESSION_CORRELATION) -> float | None:
        """The standard deviation of the log of a sum of entries, ``parts`` of (key,
        milliseconds at one speed): one session's noise, the sessions the sum pools correlated
        by ``correlation`` (sessions close in time drift together), so that of its variance
        that share stays and the rest averages out over the independent sessions the sum is
        worth; None while the table states no noise. The correlation is an empirical figure,
        measured against a second table (``benchmarks/latency_expected.py``)."""
        noise = self.session_noise()
        if noise is None:
            return None
        shared = correlation + (1 - correlation) / self.independent_sessions(parts)
        return noise * math.sqrt(shared)

    def _session_noise(self) -> float | None:
        p = self.profile
        ours = {k: rows for k, rows in self.rows.items()
                if (k.batch, k.dtype, k.memory_format) == (p.batch, p.dtype, p.memory_format)}
        if not ours:
            return None
        typical = self.typical_probe_ms()  # a pool read at it is its rows' geometric mean
        logs = {k: [(r.measured_at, math.log(r.ms_at(typical))) for r in rows]
                for k, rows in ours.items()}
        totals = {k: (sum(x for _, x in rows), len(rows)) for k, rows in logs.items()}
        sessions: dict[str, list[tuple[Key, float]]] = {}
        for k, rows in logs.items():
            for at, x in rows:
                sessions.setdefault(at, []).append((k, x))
        squares = []
        for rows in sessions.values():
            mine: dict[Key, tuple[float, int]] = {}  # the session's own rows of each unit
            for k, x in rows:
                total, count = mine.get(k, (0.0, 0))
                mine[k] = (total + x, count + 1)
            own = others = discount = 0.0
            for k, x in rows:
                (total, count), (own_total, own_count) = totals[k], mine[k]
                if count > own_count:  # the unit's other rows, pooled
                    own += math.exp(x)
                    others += math.exp((total - own_total) / (count - own_count))
                    discount = max(discount, 1 / (count - own_count))
            if others:  # its log ratio's variance: one session's plus the pools' (at most)
                squares.append(math.log(own / others) ** 2 / (1 + discount))
        if len(squares) < NOISE_SESSIONS:
            return None
        return math.sqrt(statistics.median(squares) / CHI2_MEDIAN)

    def refresh(self) -> None:
        """Read the rows other processes appended since the last read."""
        try:
            with open(self.path, "rb") as f:
                fcntl.flock(f, fcntl.LOCK_SH)
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        complete = data[:data.rfind(b"\n") + 1]  # a torn last line waits for its end
        lines = complete.decode("utf-8", errors="replace").splitlines()
        if self._offset == 0 and data and not lines:  # the header is written whole, at once
            self._read_header(data.decode("utf-8", errors="replace").splitlines())
        if self._offset == 0 and lines:
            lines = self._read_header(lines)
        self._offset += len(complete)
        self._read_rows(lines)
        self._lines += len(lines)

    def _read_header(self, lines: list[str]) -> list[str]:
        meta = {}
        while lines and lines[0].startswith("#"):
            name, _, value = lines.pop(0)[1:].partition(":")
            meta[name.strip()] = value.strip()
            self._lines += 1
        if not lines or lines[0] != ",".join(COLUMNS):
            raise LatencyError(f"{self.path}: not a latency table: expected the column line "
                               f"'{','.join(COLUMNS)}' after its '#' lines")
        self._lines += 1
        fingerprint = self.measured_on = meta.get("fingerprint", "an unknown device")
        if fingerprint != self.profile.fingerprint():
            warnings.warn(f"{self.path} was measured on '{fingerprint}', this is "
                          f"'{self.profile.fingerprint()}': its entries may not hold here",
                          OtherDeviceWarning, stacklevel=3)
        return lines[1:]

    def _read_rows(self, lines: list[str]) -> None:
        bad = []
        for i, line in enumerate(lines, self._lines + 1):
            try:
                entry = parse_row(line)
            except ValueError:
                bad.append(i)
                continue
            known = self.entries.get(entry.key)
            self.entries[entry.key] = entry if known is None else known.pooled(entry)
            self.rows.setdefault(entry.key, []).append(entry)
            self._shares.pop(entry.key, None)
        if bad:
            shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            warnings.warn(f"{self.path}: skipped {len(bad)} malformed row(s) at line(s) {shown}; "
                          f"the {len(self.entries)} valid entries are used", TableWarning,
                          stacklevel=3)

    def add(self, entries: Iterable[Entry]) -> None:
        """Append entries to the file (creating it with its header) and to this table; never
        to a table measured on another device, whose entries they would mix with."""
        entries = list(entries)
        if self.measured_on not in (None, self.profile.fingerprint()):
            raise LatencyError(f"{self.path} was measured on '{self.measured_on}': entries "
                               f"measured on '{self.profile.fingerprint()}' do not belong in it; "
                               f"use a table of this device (--latency-table)")
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(e.row() for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                f.write(self._header().encode())
            else:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    f.write(b"\n")  # end a row torn by a crashed writer: it reads as malformed
            f.write(out.getvalue().encode())
        self.refresh()

    def _header(self) -> str:
        return (f"# nas latency table: per-unit latency in milliseconds (nas/latency)\n"
                f"# device: {self.profile.name()}\n"
                f"# fingerprint: {self.profile.fingerprint()}\n" + ",".join(COLUMNS) + "\n")


def parse_row(line: str) -> Entry:
    """An entry from one CSV line; ValueError if it is not a well-formed row."""
    fields_ = next(csv.reader([line]), [])
    if len(fields_) != len(COLUMNS):
        raise ValueError(line)
    signature, batch, dtype, memory_format, mean, median, iqr, repeats, probe, at = fields_
    entry = Entry(Key(signature, int(batch), dtype, memory_format), float(mean), float(median),
                  float(iqr), int(repeats), float(probe), at)
    times = (entry.mean_ms, entry.median_ms, entry.probe_ms)
    valid = (SIGNATURE.match(signature) and entry.key.batch >= 1 and dtype in DTYPES
             and memory_format in MEMORY_FORMATS and all(0 < x < math.inf for x in times)
             and 0 <= entry.iqr_ms < math.inf and entry.repeats >= 1 and at)
    if not valid:
        raise ValueError(line)
    return entry
