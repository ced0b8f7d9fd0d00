"""Latency lookup tables: a network's latency predicted as the sum of its units' measured latencies.

Units
    A unit is one block of :func:`nas.network.layout` (the stem, every block, the head), keyed
    by a readable signature of its constructor arguments and input size, e.g.
    ``ResNeXtBlock(w_in=32,w_out=64,stride=2,bot_mul=1.0,group_w=16,se=0.0,shortcut=proj)@56x56``,
    plus the batch, dtype and memory format it ran with. Whole blocks, not single ops, because
    the framework runs a block as one call: its Python overhead and the fusion of its ops are in
    the entry.
Measurement
    A unit is timed where it really runs: inside its network, which runs forward pass after pass
    (``eval()``, ``torch.inference_mode()``, the profile's thread count) after warm-up passes, with
    a clock read around every unit. So each entry carries the cache state a network leaves it
    (weights last read one pass ago, the input just written by the unit before, buffers the
    allocator recycled), which timing a unit alone in a loop misses: blocks timed alone ran 5-20%
    faster than inside networks here, most of all those with large activations. Missing entries are
    measured in the network that needs them; entries are shared by every network with the same unit.
    Timing that network times the units the table already lists as well: each such measurement
    within ``max_noise`` is added to the table too, and an entry pools every measurement of its
    unit (the geometric means of their times and of their probes, so that it reads at any speed
    as the geometric mean of its measurements read at that speed). A unit that recurs across
    networks, as those near a search's front do, is measured again each time a network with it
    is, and a single measurement's noise (mostly the measuring process's, per session) averages
    out. ``fill(..., sessions=N)`` (``nas latency build --sessions N``) times a network until
    every one of its units has N measurements: three halved the spread between two tables of
    the same networks here (``benchmarks/latency_repeatability.py --sessions 3``). The units
    measured in several sessions also let a table state its noise (``Table.session_noise``:
    how far one session strays, from each session against the pool of its units' other rows)
    and a sum's (``Table.sum_noise``: less, as its units come from more sessions), which the
    search's screen weighs a network's predicted latency by.
    Each network is measured in a process of its own, forked from a server that has imported torch
    and run nothing, as a deployed network runs in a process that serves only it: a process that has
    built and timed 20 networks ran later ones 5-20% slower here, and neither ``gc.collect()`` nor
    ``malloc_trim`` undid it. Each entry keeps the mean, median and interquartile range of its
    calls; a measurement whose IQR exceeds ``max_noise`` of the median is repeated (up to
    ``retries`` times) and the quietest is kept, its IQR recorded as the entry's noise. With one CPU
    thread the clock is the thread's CPU time, which equals wall time on an idle core but leaves out
    the time other processes hold it (their cache and memory traffic still counts); with more
    threads, or on CUDA, it is wall time (synchronized on CUDA).
Backends and devices
    ``Profile.backend`` is ``torch`` (eager PyTorch, as above) or ``onnxruntime``: the network
    runs as one ONNX Runtime session of its export and its units are timed inside it by the
    runtime's profiler (``nas.latency.ort``). ``Profile.node`` names the Ray resource of a target
    device that takes the measurements instead of this machine (``nas.latency.remote``).
Speed
    A shared machine's speed drifts (other tenants' load on its caches and memory), so an entry
    measured a while ago may be off today. Each entry keeps the time of a small fixed probe
    network in the same process, the mean of its runs just before and just after the entry's
    measurement, and a prediction reads every entry at one speed: its mean times
    ``(probe_ms / entry.probe_ms) ** PROBE_ELASTICITY``, at the table's typical speed (the
    median probe of its entries) by default, or at the speed a probe shows now. The power is
    0.5 because the units follow the probe only part of the way: between tables of the same
    networks measured minutes to hours apart on a shared 2-core VM, the power that best fitted
    the units' change to the probe's was 0.0 to 0.73 (median 0.4, 15 comparisons; 0.5 was
    chosen on these). In a later run (``benchmarks/latency_repeatability.py``, 6 comparisons)
    two tables disagreed least read by half the change, in all 6, and more read by the whole
    change (the power 1 these tables used until December 2026) or by none.
    ``probe_spread`` is reported by every build and check, and a spread above ``NOISY_SPREAD``
    (15%) is warned about: the machine was too unsteady for the correction to hold.
Prediction
    The sum of the entries' means: the mean of a network's latency is the sum of its units'
    means, while per-call times are skewed to the right, so medians add up to less than the
    network's median (up to 6% less here). ``measure_network`` times the whole network the way a
    user would (``torch.utils.benchmark.Timer`` on ``net(x)``), the truth ``nas latency check``
    compares against.
Allocator
    glibc returns freed heap memory to the system and maps large blocks afresh, so a forward
    pass can page-fault its activations in again on every call, at a cost that depends on the
    whole network's memory peak rather than on its units. Measuring processes keep the heap
    instead (``mallopt``: no trimming, mapping only above 32 MiB), as a long-running server's
    allocator does after warm-up, and so do tcmalloc and jemalloc.
Table file
    One CSV file per device profile (default ``results/latency/<device>.csv``): ``#`` lines
    naming the device and its fingerprint, the column line, then one row per entry. Processes
    append whole rows under an exclusive ``flock`` and never rewrite the file, so concurrent
    writers lose nothing; the rows of one key are pooled into its entry. Malformed rows are
    skipped with a warning naming their lines; the valid rows are kept.
"""

from nas.latency.prediction import Prediction, check, fill, predict
from nas.latency.profile import LatencyError, Profile, SpeedWarning, TableWarning
from nas.latency.table import Entry, Key, Placed, Table, placed_keys, placed_units
from nas.latency.timing import NOISY_SPREAD, Timing, measure_network, probe_spread, warn_if_noisy

__all__ = ["NOISY_SPREAD", "Entry", "Key", "LatencyError", "Placed", "Prediction", "Profile",
           "SpeedWarning", "Table", "TableWarning", "Timing", "check", "fill", "measure_network",
           "placed_keys", "placed_units", "predict", "probe_spread", "warn_if_noisy"]
