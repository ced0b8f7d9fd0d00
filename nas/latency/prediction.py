"""Predictions from a table: filling it with the entries a network lacks, summing them, and
checking the sum against whole networks timed end to end."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, replace

from nas.config import Network
from nas.latency.profile import LatencyError
from nas.latency.remote import run
from nas.latency.table import Entry, Key, Placed, Table, placed_keys, placed_units
from nas.latency.timing import (
    Timing,
    measure_units,
    network_at_speed,
    warn_if_noisy,
)
from nas.network import check_fits


def fill(table: Table, configs: Iterable[Network], timing: Timing, resolution: int = 224,
         num_classes: int = 1000, sessions: int = 1) -> int:
    """Measure and save the entries the table lacks for these networks: a unit lacks one until
    it was measured in ``sessions`` timings of a network. Returns how many such measurements
    were saved. A network is timed whole, so its other units are measured again: those
    measured within ``timing.max_noise`` are saved too, and pooled into their entries."""
    added = 0
    for config in configs:
        check_fits(config, num_classes, resolution, table.profile.batch)
        keys = list(dict.fromkeys(placed_keys(config, table.profile, resolution, num_classes)))
        if _lacking(table, keys, sessions):
            table.refresh()  # another process may have measured them meanwhile
        for _ in range(sessions):  # a timing adds a session to each unit that lacks one
            missing = _lacking(table, keys, sessions)
            if not missing:
                break
            entries = run(table.profile, timing, measure_units, config, table.profile, timing,
                          resolution, num_classes, missing)
            again = [e for k, e in entries.items() if k not in missing
                     and e.iqr_ms <= timing.max_noise * e.median_ms]
            table.add([*(entries[k] for k in missing), *again])
            added += len(missing)
    return added


def _lacking(table: Table, keys: list[Key], sessions: int) -> list[Key]:
    return [k for k in keys if (e := table.get(k)) is None or e.sessions < sessions]


@dataclass(frozen=True)
class Prediction:
    """A network's predicted latency: the entry of every unit, in network order, each read at
    the speed ``probe_ms`` (:meth:`Entry.ms_at`)."""

    units: tuple[tuple[Placed, Entry], ...]
    probe_ms: float

    def unit_ms(self, entry: Entry) -> float:
        return entry.ms_at(self.probe_ms)

    @property
    def total_ms(self) -> float:
        return sum(self.unit_ms(entry) for _, entry in self.units)

    def by_stage(self) -> dict[str, float]:
        """Milliseconds of ``stem``, ``s1`` ... and ``head``."""
        parts: dict[str, float] = {}
        for placed, entry in self.units:
            stage = placed.name.split(".")[0]
            parts[stage] = parts.get(stage, 0.0) + self.unit_ms(entry)
        return parts


def predict(config: Network, table: Table, resolution: int = 224, num_classes: int = 1000,
            timing: Timing | None = None, probe_ms: float | None = None) -> Prediction:
    """Sum of the table's entries for the network at the speed ``probe_ms`` (default: the
    table's typical speed); missing entries are measured and saved with ``timing``, and
    without it raise LatencyError."""
    if timing is not None:
        fill(table, [config], timing, resolution, num_classes)
    placed = placed_units(config, resolution, num_classes)
    missing = [p for p in placed if table.get(p.key(table.profile)) is None]
    if missing:
        raise LatencyError(f"{table.path}: {len(missing)} unit(s) not measured, first "
                           f"{missing[0].key(table.profile).signature}")
    return Prediction(tuple((p, table.get(p.key(table.profile))) for p in placed),
                      probe_ms or table.typical_probe_ms())


def check(configs: Iterable[Network], table: Table, timing: Timing, resolution: int = 224,
          num_classes: int = 1000) -> dict:
    """Predicted against measured end-to-end latency of networks, each predicted at the speed
    the probe shows around its measurement: ``n``, the median absolute relative error, the
    shares within 5% and 10%, the mean share of units whose entries were in the table before
    (``reused``; the rest were measured in the network itself), the probes' ``probe_spread``
    (warned about when too wide), and one row per network."""
    end_to_end = replace(timing, min_run_time=2 * timing.min_run_time)  # whole networks
    rows = []
    for config in configs:
        keys = placed_keys(config, table.profile, resolution, num_classes)
        reused = sum(table.get(k) is not None for k in keys) / len(keys)
        fill(table, [config], timing, resolution, num_classes)
        measured, speed = run(table.profile, timing, network_at_speed, config, table.profile,
                              end_to_end, resolution, num_classes)
        prediction = predict(config, table, resolution, num_classes, probe_ms=speed)
        rows.append({"predicted_ms": prediction.total_ms, "measured_ms": measured.median_ms,
                     "measured_iqr_ms": measured.iqr_ms, "probe_ms": speed,
                     "predicted_typical_ms": replace(prediction,
                                                     probe_ms=table.typical_probe_ms()).total_ms,
                     "reused": reused, "config": config.to_dict()})
    errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in rows]
    spread = warn_if_noisy([r["probe_ms"] for r in rows], "check")
    return {"n": len(rows), "median_abs_error": statistics.median(errors),
            "probe_spread": spread,
            "within_5": sum(e <= 0.05 for e in errors) / len(rows),
            "within_10": sum(e <= 0.10 for e in errors) / len(rows),
            "reused": statistics.fmean(r["reused"] for r in rows), "rows": rows}
