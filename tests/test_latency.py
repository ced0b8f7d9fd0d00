"""Latency tables: keys, the table file under concurrent writers and damage, and predictions."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import warnings
from dataclasses import replace

import pytest
import torch
from randomnets import random_network

from nas import latency
from nas.blocks import FAMILIES
from nas.cli import main
from nas.config import Network
from nas.latency import (
    Entry,
    Key,
    LatencyError,
    Profile,
    Table,
    TableWarning,
    Timing,
    placed_keys,
    placed_units,
    predict,
)
from nas.latency.profile import OtherDeviceWarning
from nas.latency.table import NOISE_SESSIONS, SESSION_CORRELATION, parse_row
from nas.network import build

RESOLUTION = 32
QUICK = Timing(min_run_time=0.005, min_repeats=5, warmup=1, retries=1, fresh_process=False)
TINY = {"stem": {"kind": "cifar", "width": 8},
        "stages": [{"block": "resnext", "depth": 2, "width": 16, "group_w": 4},
                   {"block": "resnext", "depth": 1, "width": 24, "group_w": 8}]}


def _entry(i: int) -> Entry:
    key = Key(f"Block(w_in={i},w_out={i + 1})@7x7", 1, "float32", "contiguous")
    return Entry(key, 0.5 + i / 1000, 0.5, 0.01, 20, 2.0, "2025-01-01T00:00:00+00:00")


def _rows(path) -> list[str]:
    return [line for line in path.read_text().splitlines()[4:] if line]


def _units(path) -> set[Key]:
    """The units a table file has rows of (a unit measured again has several)."""
    return {parse_row(line).key for line in _rows(path)}


def test_table_round_trip(tmp_path):
    path = tmp_path / "t.csv"
    table = Table(path, Profile())
    table.add([_entry(i) for i in range(3)])
    table.add([_entry(3)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = Table(path, Profile())
    assert again.entries == table.entries and len(again) == 4
    head = path.read_text().splitlines()
    assert head[1] == f"# device: {Profile().name()}"
    assert head[2] == f"# fingerprint: {Profile().fingerprint()}"
    assert head[4].startswith('"Block(w_in=0,w_out=1)@7x7",1,float32,contiguous,0.5,0.5,0.01,20,')


@pytest.mark.parametrize("family", FAMILIES)
def test_unit_inputs_are_what_the_built_network_feeds_them(family):
    net = random_network(random.Random(family), family, [2, 1])
    placed = placed_units(net, RESOLUTION, 10)
    model = build(net, 10)
    modules = [model.stem, *(b for s in list(model.children())[1:-1] for b in s), model.head]
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, x: seen.append(tuple(x[0].shape[1:])))
             for m in modules]
    model.eval()(torch.zeros(1, 3, RESOLUTION, RESOLUTION))
    for h in hooks:
        h.remove()
    assert [p.shape for p in placed] == seen
    assert [p.name for p in placed][:2] == ["stem", "s1.b1"]


@pytest.mark.parametrize("family", FAMILIES)
def test_keys_from_cached_parts_are_each_units_own(family):
    rng = random.Random(family)
    for _ in range(20):
        net = random_network(rng, family, [rng.randrange(1, 4) for _ in range(3)])
        for resolution, classes in ((224, 1000), (32, 10), (7, 10)):
            for profile in (Profile(), Profile(batch=8)):
                assert placed_keys(net, profile, resolution, classes) == tuple(
                    p.key(profile) for p in placed_units(net, resolution, classes))


def test_keys_from_cached_parts_write_values_as_given():
    net = Network.from_dict(TINY)
    as_int = replace(net, stages=(replace(net.stages[0], bot_mul=1), *net.stages[1:]))
    for config in (net, as_int, net):  # each after an equal part of the other type was cached
        assert placed_keys(config, Profile(), RESOLUTION, 10) == tuple(
            p.key(Profile()) for p in placed_units(config, RESOLUTION, 10))
    assert "bot_mul=1," in placed_keys(as_int, Profile(), RESOLUTION, 10)[1].signature


def test_keys_are_canonical_and_carry_the_run():
    placed = placed_units(Network.from_dict(TINY), RESOLUTION, 10)[1]
    assert placed.signature() == ("ResNeXtBlock(w_in=8,w_out=16,stride=2,bot_mul=1.0,group_w=4,"
                                  "se=0.0,shortcut=proj)@32x32")
    # signatures are cached per unit: an equal value of another type is still written as given
    as_int = replace(placed, unit=replace(placed.unit, kwargs={**placed.unit.kwargs,
                                                               "bot_mul": 1}))
    assert "bot_mul=1," in as_int.signature() and "bot_mul=1.0," in placed.signature()
    # an option names itself only when set, so tables measured before it existed stay valid
    stages = [{**TINY["stages"][0], "se_at": "out", "stride_at": "first"}, *TINY["stages"][1:]]
    optioned = placed_units(Network.from_dict({**TINY, "stages": stages}), RESOLUTION, 10)[1]
    assert optioned.signature() == ("ResNeXtBlock(w_in=8,w_out=16,stride=2,bot_mul=1.0,"
                                    "group_w=4,se=0.0,shortcut=proj,se_at=out,stride_at=first)"
                                    "@32x32")
    key = placed.key(Profile(batch=4, memory_format="channels_last"))
    assert (key.batch, key.dtype, key.memory_format) == (4, "float32", "channels_last")


def test_prediction_is_the_sum_of_its_entries_and_missing_ones_are_measured_once(tmp_path,
                                                                                 monkeypatch):
    measured = []
    monkeypatch.setattr(latency.prediction, "measure_units",
                        _counting(latency.prediction.measure_units, measured))
    path = tmp_path / "t.csv"
    net = Network.from_dict(TINY)
    table = Table(path, Profile())
    prediction = predict(net, table, RESOLUTION, 10, QUICK)
    keys = {p.key(table.profile) for p, _ in prediction.units}
    assert len(_rows(path)) == len(keys) == 5  # stem, two distinct blocks of s1, s2.b1, head
    assert prediction.total_ms == pytest.approx(sum(e.mean_ms for _, e in prediction.units))
    assert sum(prediction.by_stage().values()) == pytest.approx(prediction.total_ms)
    assert all(table.get(p.key(table.profile)) == e for p, e in prediction.units)

    with pytest.raises(LatencyError, match="1 unit.* not measured, first HeadModule"):
        predict(net, table, RESOLUTION, 100)  # only the head differs; measuring is off
    assert len(measured) == 1
    accepting = replace(QUICK, max_noise=math.inf)  # every unit measured again is saved
    other = predict(net, Table(path, Profile()), RESOLUTION, 100, accepting)
    assert len(measured) == 2 and len(_rows(path)) == 5 + 5  # the new head, and the 4 again
    assert [e.sessions for _, e in other.units] == [2, 2, 2, 2, 1]
    for (_, first), (_, pooled) in zip(prediction.units[:-1], other.units):
        [again] = [e for e in map(parse_row, _rows(path)[5:]) if e.key == first.key]
        assert pooled.mean_ms == pytest.approx(math.sqrt(first.mean_ms * again.mean_ms))


def test_entries_are_read_at_one_speed_by_half_the_probes_change(tmp_path):
    """An entry measured while the probe took p ms, read where it takes q ms: its mean times
    (q / p) ** 0.5 (the units followed the probe about half way, nas/latency/__init__.py)."""
    assert latency.table.PROBE_ELASTICITY == 0.5
    table = Table(tmp_path / "t.csv", Profile())
    net = Network.from_dict(TINY)
    keys = list(dict.fromkeys(p.key(table.profile) for p in placed_units(net, RESOLUTION, 10)))
    probes = [1.0, 2.0, 2.0, 4.0, 8.0]  # the probe network's ms when each entry was measured
    table.add(Entry(k, 1.0, 1.0, 0.0, 20, probe, "2025-01-01T00:00:00+00:00")
              for k, probe in zip(keys, probes))
    assert table.typical_probe_ms() == 2.0
    typical = predict(net, table, RESOLUTION, 10)
    assert [typical.unit_ms(e) for _, e in typical.units] == pytest.approx(
        [2 ** 0.5, 1.0, 1.0, 0.5 ** 0.5, 0.5])
    assert predict(net, table, RESOLUTION, 10, probe_ms=8.0).total_ms == pytest.approx(
        2 * typical.total_ms)


def test_rows_of_one_unit_are_pooled_so_any_speed_reads_their_geometric_mean(tmp_path):
    """Each measurement of a unit is a row; its entry reads, at any speed, as the geometric mean
    of its rows read at that speed, each row weighing alike however the rows arrive."""
    path = tmp_path / "t.csv"
    table = Table(path, Profile())
    key = _entry(0).key
    rows = [(1.0, 1.0, "2025-01-01"), (4.0, 4.0, "2025-01-03"), (2.0, 8.0, "2025-01-02")]
    table.add([Entry(key, ms, ms, 0.1 * ms, 20, probe, at) for ms, probe, at in rows[:2]])
    table.add([Entry(key, ms, ms, 0.1 * ms, 20, probe, at) for ms, probe, at in rows[2:]])
    entry = table.get(key)
    for speed in (1.0, 2.0, 3.0):
        read = [ms * (speed / probe) ** 0.5 for ms, probe, _ in rows]
        assert entry.ms_at(speed) == pytest.approx(math.prod(read) ** (1 / 3))
    assert (entry.sessions, entry.repeats, entry.measured_at) == (3, 60, "2025-01-02")
    assert entry.iqr_ms == pytest.approx(0.7 / 3)
    assert Table(path, Profile()).get(key) == entry and len(_rows(path)) == 3
    with pytest.raises(ValueError, match="a pooled entry is written as its rows"):
        Table(tmp_path / "copy.csv", Profile()).add([entry])


def test_a_table_states_the_noise_of_its_sessions_from_the_units_it_measured_again(tmp_path):
    """Simulated sessions, each scaling every unit it times by one factor of log standard
    deviation 0.08 (and each unit by its own of 0.01), give that noise back within 15% from the
    units measured in several sessions; with fewer than NOISE_SESSIONS of them, or none, a
    table states no noise."""
    rng = random.Random(0)
    true = {_entry(i).key: rng.uniform(0.2, 2.0) for i in range(40)}
    table = Table(tmp_path / "t.csv", Profile())

    def session(number: int, keys) -> None:
        factor, at = math.exp(rng.gauss(0, 0.08)), f"2025-01-01T{number // 60}:{number % 60}"
        table.add(Entry(k, ms, ms, 0.0, 20, 2.0, at) for k in keys
                  for ms in [true[k] * factor * math.exp(rng.gauss(0, 0.01))])

    session(0, true)
    assert table.session_noise() is None  # every unit measured once
    for number in range(1, NOISE_SESSIONS - 1):
        session(number, rng.sample(list(true), 6))
    assert table.session_noise() is None
    for number in range(NOISE_SESSIONS - 1, 300):
        session(number, rng.sample(list(true), 6))
    assert table.session_noise() == pytest.approx(0.08, rel=0.15)
    assert Table(table.path, Profile()).session_noise() == table.session_noise()


def test_a_sum_of_entries_is_worth_the_sessions_its_shares_say(tmp_path):
    """Units measured in one session share its noise, and a unit pooled from several sessions
    averages theirs: a sum is worth one over the sum of each session's squared share of it."""
    table = Table(tmp_path / "t.csv", Profile())
    a, b, c = (_entry(i).key for i in range(3))
    table.add([Entry(a, 1.0, 1.0, 0.0, 20, 2.0, "s1"), Entry(b, 3.0, 3.0, 0.0, 20, 2.0, "s1")])
    assert table.independent_sessions([(a, 1.0), (b, 3.0)]) == pytest.approx(1.0)
    table.add([Entry(b, 3.0, 3.0, 0.0, 20, 2.0, "s2"), Entry(c, 4.0, 4.0, 0.0, 20, 2.0, "s3")])
    assert table.session_shares(b) == {"s1": 0.5, "s2": 0.5}
    # s1 has 1/4 (a) and half of 3/4 (b), s2 the other half of b
    assert table.independent_sessions([(a, 1.0), (b, 3.0)]) == pytest.approx(
        1 / (0.625 ** 2 + 0.375 ** 2))
    assert table.independent_sessions([(a, 4.0), (c, 4.0)]) == pytest.approx(2.0)
    assert table.sum_noise([(a, 4.0), (c, 4.0)]) is None  # until the table states its noise


def test_a_sums_noise_is_a_sessions_less_what_independent_sessions_average_out(tmp_path):
    """Units measured again in many sessions: the noise of a sum of one unit pooled from s
    independent sessions is one session's times the square root of SESSION_CORRELATION plus
    the rest over s."""
    table = Table(tmp_path / "t.csv", Profile())
    keys = [_entry(i).key for i in range(4)]
    for s in range(NOISE_SESSIONS + 3):  # a unit a session, alternating
        factor = 1.1 if s % 2 else 1 / 1.1
        table.add([Entry(keys[s % 4], factor, factor, 0.0, 20, 2.0, f"s{s}")])
    table.add(Entry(k, 1.0, 1.0, 0.0, 20, 2.0, "again") for k in keys)
    noise, sessions = table.session_noise(), table.independent_sessions([(keys[0], 1.0)])
    assert noise > 0 and sessions == pytest.approx(len(table.rows[keys[0]]))
    assert table.sum_noise([(keys[0], 1.0)]) == pytest.approx(
        noise * (SESSION_CORRELATION + (1 - SESSION_CORRELATION) / sessions) ** 0.5)
    assert table.sum_noise([(keys[0], 1.0)], correlation=1.0) == pytest.approx(noise)
    assert table.sum_noise([(keys[0], 1.0)], correlation=0.0) == pytest.approx(
        noise / sessions ** 0.5)


def test_units_a_network_has_again_are_saved_when_measured_quietly(tmp_path, monkeypatch):
    """A network that lacks one unit is timed whole: the units the table lists are pooled with
    their new measurement where its IQR is within ``max_noise`` of the median."""
    table = Table(tmp_path / "t.csv", Profile())
    net = Network.from_dict(TINY)
    keys = list(dict.fromkeys(p.key(table.profile) for p in placed_units(net, RESOLUTION, 10)))
    table.add(Entry(k, 1.0, 1.0, 0.0, 20, 2.0, "2025-01-01") for k in keys[1:])
    noise = dict(zip(keys, [0.5, 0.05, 0.5, 0.1, 0.05]))  # IQR / median of the new measurement
    monkeypatch.setattr(latency.prediction, "run", lambda *_: {
        k: Entry(k, 4.0, 4.0, 4.0 * noise[k], 20, 2.0, "2025-01-02") for k in keys})
    assert latency.fill(table, [net], Timing(max_noise=0.1), RESOLUTION, 10) == 1
    assert [table.get(k).sessions for k in keys] == [1, 2, 1, 2, 2]
    assert [table.get(k).mean_ms for k in keys] == pytest.approx([4.0, 2.0, 1.0, 2.0, 2.0])
    assert latency.fill(table, [net], Timing(max_noise=0.1), RESOLUTION, 10) == 0  # none lacked
    assert [table.get(k).sessions for k in keys] == [1, 2, 1, 2, 2]


def test_filling_stops_when_what_it_measured_does_not_read_back(tmp_path, monkeypatch):
    """A measurement the table cannot read (here 0 ms, which a row may not hold) is timed no
    more often than the sessions asked for, and the prediction then names what is missing."""
    table = Table(tmp_path / "t.csv", Profile())
    net = Network.from_dict(TINY)
    keys = list(dict.fromkeys(p.key(table.profile) for p in placed_units(net, RESOLUTION, 10)))
    monkeypatch.setattr(latency.prediction, "run", lambda *_: {
        k: Entry(k, 0.0, 0.0, 0.0, 20, 2.0, "2025-01-02") for k in keys})
    with pytest.warns(TableWarning, match="malformed"):
        assert latency.fill(table, [net], Timing(), RESOLUTION, 10, sessions=2) == 2 * len(keys)
    assert len(table) == 0
    with pytest.raises(LatencyError, match="5 unit"):
        predict(net, table, RESOLUTION, 10)


def test_building_with_sessions_times_each_network_until_every_unit_has_them(tmp_path,
                                                                              capsys):
    path = tmp_path / "t.csv"
    args = ["latency", "build", *SPACE, "--latency-table", str(path), "--json"]
    assert main([*args, "--sessions", "3"]) == 0
    built = json.loads(capsys.readouterr().out)
    table = Table(path, Profile())
    assert built["sessions"] == 3 and built["measured"] == 3 * built["needed"] == 3 * len(table)
    assert min(e.sessions for e in table.entries.values()) >= 3
    assert len(_rows(path)) == sum(e.sessions for e in table.entries.values())
    assert built["session_noise"] == table.session_noise()
    assert main([*args, "--sessions", "2"]) == 0  # every unit has them already
    assert json.loads(capsys.readouterr().out)["measured"] == 0
    with pytest.raises(SystemExit) as refused:
        main([*args, "--sessions", "0"])
    assert refused.value.code == 2
    assert "--sessions: must be a positive integer" in capsys.readouterr().err


def test_fresh_process_measurements_run_each_in_a_new_process():
    pids = {latency.timing.in_own_process(Timing(), os.getpid) for _ in range(2)}
    assert len(pids) == 2 and os.getpid() not in pids
    assert latency.timing.in_own_process(Timing(fresh_process=False), os.getpid) == os.getpid()


def test_noisy_entries_are_measured_again_and_the_quietest_kept(monkeypatch):
    rounds = iter([[1.0, 2.0, 3.0, 4.0], [1.0, 1.01, 1.02, 1.03], [5.0] * 4])  # seconds
    def passes(modules, *_):
        times = next(rounds)
        return [list(times) for _ in modules]

    monkeypatch.setattr(latency.timing, "_time_passes", passes)
    entries = latency.timing.measure_units(Network.from_dict(TINY), Profile(), Timing(retries=3),
                                    RESOLUTION, 10)
    assert next(rounds) == [5.0] * 4  # the quiet second round ended the measurement
    for entry in entries.values():
        assert entry.median_ms == pytest.approx(1015)
        assert entry.iqr_ms == pytest.approx(25)  # the noise is recorded
        assert entry.mean_ms == pytest.approx(1015) and entry.repeats == 4


def test_an_entrys_speed_is_the_probe_before_and_after_its_measurement(monkeypatch):
    probes, order = iter([2.0, 4.0]), []
    def probe(*_):
        order.append("probe")
        return next(probes)
    def passes(modules, *_):
        order.append("units")
        return [[1e-3] * 4 for _ in modules]

    monkeypatch.setattr(latency.timing, "probe", probe)
    monkeypatch.setattr(latency.timing, "_time_passes", passes)
    entries = latency.timing.measure_units(Network.from_dict(TINY), Profile(), QUICK,
                                           RESOLUTION, 10)
    assert order == ["probe", "units", "probe"]
    assert {e.probe_ms for e in entries.values()} == {3.0}


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)
    return counted


def _writer(path: str, start: int) -> None:
    table = Table(path, Profile())
    for i in range(start, start + 150):
        table.add([_entry(i)])


def test_two_processes_writing_one_table_keep_every_entry(tmp_path):
    path = str(tmp_path / "t.csv")
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(path, start)) for start in (0, 1000)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = Table(path, Profile())
    expected = {_entry(i).key for i in [*range(150), *range(1000, 1150)]}
    assert set(table.entries) == expected


def test_corrupt_rows_are_reported_and_valid_rows_kept(tmp_path):
    path = tmp_path / "t.csv"
    Table(path, Profile()).add([_entry(0), _entry(1)])
    with open(path, "a") as f:
        f.write("not,a,row\n")
        f.write('"Block(w_in=9)@7x7",1,float32,contiguous,-1,0.1,20,2025\n')
        f.write('"Block(w_in=7)@7x7",1,float32,contiguous,inf,0.5,0.01,20,2.0,2025\n')
        f.write('"Block(w_in=8)@7x7",1,float')  # torn by a crashed writer
    with pytest.warns(TableWarning, match=r"skipped 3 malformed row\(s\) at line\(s\) 7, 8, 9"):
        table = Table(path, Profile())
    assert set(table.entries) == {_entry(0).key, _entry(1).key}
    with pytest.warns(TableWarning, match="line.* 10"):
        table.add([_entry(2)])  # ends the torn row, which now reads as malformed
    assert _keys(path) == {_entry(i).key for i in range(3)}


def test_a_probe_spread_beyond_what_the_correction_handles_is_warned_about():
    steady = [2.0, 2.02, 1.98, 2.01]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert 0 < latency.warn_if_noisy(steady, "build") < 0.02
    with pytest.warns(latency.SpeedWarning, match=r"varied by \d+% during this check"):
        assert latency.warn_if_noisy(steady + [3.0, 1.5], "check") > latency.NOISY_SPREAD
    assert latency.probe_spread([2.0]) == 0


def _keys(path) -> set:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return set(Table(path, Profile()).entries)


def test_a_file_that_is_no_table_is_a_clear_error_and_left_alone(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("median,key\n1,2\n")
    with pytest.raises(LatencyError, match="not a latency table: expected the column line"):
        Table(path, Profile())
    config = tmp_path / "net.yaml"
    Network.from_dict(TINY).save(config)
    assert main(["latency", "predict", str(config), "--latency-table", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a latency table" in err
    assert path.read_text() == "median,key\n1,2\n"


def test_a_table_from_another_fingerprint_warns_and_takes_no_entries(tmp_path):
    path = tmp_path / "t.csv"
    Table(path, Profile()).add([_entry(0)])
    with pytest.warns(OtherDeviceWarning, match="threads=1.*threads=2"):
        table = Table(path, Profile(threads=2))
    assert table.get(_entry(0).key) == _entry(0)
    before = path.read_text()
    with pytest.raises(LatencyError, match="do not belong in it"):
        table.add([_entry(1)])
    assert path.read_text() == before


def test_predict_command_prints_stages_and_json(tmp_path, capsys):
    config, path = tmp_path / "net.yaml", tmp_path / "t.csv"
    Network.from_dict(TINY).save(config)
    argv = ["latency", "predict", str(config), "--latency-table", str(path), "--resolution",
            str(RESOLUTION), "--num-classes", "10", "--min-run-time", "0.005"]
    assert main(argv + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["stages"]) == ["stem", "s1", "s2", "head"]
    assert out["predicted_ms"] == pytest.approx(sum(u["ms"] for u in out["units"]))
    assert main(argv + ["--no-measure"]) == 0
    text = capsys.readouterr().out
    assert f"{out['predicted_ms']:.3f} ms predicted" in text
    assert [line.split()[0] for line in text.splitlines()[2:]] == ["stem", "s1", "s2", "head"]


SPACE = ["--space", "regnet", "--budget", "10MF", "-n", "2", "--resolution", str(RESOLUTION),
         "--num-classes", "10", "--min-run-time", "0.005"]


def test_build_fills_what_check_needs_and_check_reports_its_rows(tmp_path, capsys):
    path = tmp_path / "t.csv"
    table = ["--latency-table", str(path), "--json"]
    assert main(["latency", "build", *SPACE, *table]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["measured"] == built["needed"] == len(_units(path)) > 0
    assert built["probe_spread"] >= 0
    assert main(["latency", "check", *SPACE, *table]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(_units(path)) == built["needed"]  # nothing was missing
    assert result["n"] == len(result["rows"]) == 2
    assert result["probe_spread"] >= 0
    errors = [abs(r["predicted_ms"] / r["measured_ms"] - 1) for r in result["rows"]]
    assert result["within_10"] == sum(e <= 0.1 for e in errors) / 2
    for row in result["rows"]:
        net = Network.from_dict(row["config"])
        again = Table(path, Profile())  # measuring is off
        assert predict(net, again, RESOLUTION, 10).total_ms == pytest.approx(
            row["predicted_typical_ms"])
        assert predict(net, again, RESOLUTION, 10, probe_ms=row["probe_ms"]).total_ms == \
            pytest.approx(row["predicted_ms"])


def test_cuda_profiles_need_a_gpu_and_time_after_synchronizing(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(LatencyError, match="torch sees no GPU"):
            Profile("cuda")
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda: "Fake GPU")
    synchronized = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: synchronized.append(True))
    profile = Profile("cuda")
    clock = profile.clock()
    assert clock() <= clock() and len(synchronized) == 2
    assert profile.name().startswith("cuda-") and profile.fingerprint().startswith("cuda=")


ORT = Profile(backend="onnxruntime")


def test_profiled_nodes_are_summed_by_the_unit_whose_module_path_names_them():
    from nas.latency.ort import attribute

    def node(ts, name, dur):
        return {"cat": "Node", "ts": ts, "dur": dur, "name": f"{name}_kernel_time"}

    run = [node(1, "ReorderInput", 5), node(2, "/stem/conv/Conv", 100),
           node(3, "/s1/b1/a/conv/Conv", 40), node(4, "ReorderOutput_token_3", 7),
           node(5, "ReorderInput_token_4", 3), node(6, "/s1/b10/Add", 20),
           node(7, "/head/fc/Gemm", 10), node(8, "ReorderOutput", 2)]
    events = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 10},
              {"cat": "Session", "name": "model_run", "ts": 100, "dur": 10},
              *run, *({**e, "ts": e["ts"] + 100, "dur": 2 * e["dur"]} for e in run),
              node(50, "/stem/conv/Conv", 999)]  # outside any run: not counted
    names = ["stem", "s1.b1", "s1.b10", "head"]
    first, second = attribute(events, names)
    assert first == pytest.approx([105e-6, 47e-6, 23e-6, 12e-6])
    assert second == pytest.approx([2 * t for t in first])


def test_onnxruntime_entries_time_every_unit_inside_the_network_session(tmp_path):
    """Every unit of a network gets an entry, timed inside the network's one session."""
    config = Network.from_dict(TINY)
    table = Table(tmp_path / "ort.csv", ORT)
    assert latency.fill(table, [config], QUICK, RESOLUTION, 10) == len(table) > 0
    keys = {p.key(ORT) for p in placed_units(config, RESOLUTION, 10)}
    assert set(table.entries) == keys
    assert all(e.mean_ms > 0 and e.probe_ms > 0 for e in table.entries.values())


def test_onnxruntime_tables_are_their_own_and_take_only_what_it_runs(tmp_path):
    assert ORT.name().endswith("-ort-t1") and Profile().name().endswith("-t1")
    assert "onnxruntime=" in ORT.fingerprint() and "torch=" not in ORT.fingerprint()
    for unsupported in ({"dtype": "float16"}, {"memory_format": "channels_last"},
                        {"device": "cuda"}):
        with pytest.raises(LatencyError, match="onnxruntime backend runs float32"):
            Profile(backend="onnxruntime", **unsupported)
    with pytest.raises(LatencyError, match="backend must be one of torch, onnxruntime"):
        Profile(backend="tvm")
    path = tmp_path / "t.csv"
    Table(path, Profile()).add([_entry(0)])
    with pytest.warns(TableWarning):
        table = Table(path, ORT)
    with pytest.raises(LatencyError, match="do not belong in it"):
        table.add([_entry(1)])


def test_the_backends_a_search_offers_are_the_tables():
    from nas.latency.profile import BACKENDS
    from nas.search.settings import LATENCY_BACKENDS

    assert LATENCY_BACKENDS == BACKENDS


def test_a_search_predicts_latency_with_the_backend_it_is_given(tmp_path):
    """``--latency-backend onnxruntime``: the candidates' latencies are the ONNX Runtime table's
    predictions, measured as the search needs them, and a run's record says which backend."""
    path, run = tmp_path / "ort.csv", tmp_path / "run"
    assert main(["search", "--budget", "5MF", "--resolution", str(RESOLUTION),
                 "--num-classes", "10", "--trials", "3", "--latency-table", str(path),
                 "--latency-backend", "onnxruntime", "--out", str(run)]) == 0
    import pandas as pd
    import yaml

    record = yaml.safe_load((run / "run.yaml").read_text())
    assert record["settings"]["latency_backend"] == "onnxruntime"
    assert "onnxruntime=" in path.read_text().splitlines()[2]
    table = Table(path, ORT)
    assert record["latency_table"] == {"path": str(path.resolve()),
                                       "measured_on": table.measured_on,  # the file's header
                                       "entries_at_start": 0}  # a new table
    trials = pd.read_csv(run / "trials.csv")
    complete = trials[trials["status"] == "complete"]
    assert len(complete) == 3 and complete["latency_measured"].iloc[0] > 0
    for _, row in complete.iterrows():
        net = Network.from_json(row["config"])
        assert all(table.get(p.key(ORT)) for p in placed_units(net, RESOLUTION, 10))
    # Predictions are at the table's typical speed, which each new entry moves; the last
    # candidate's is the table's as it ended.
    last = complete.sort_values("trial_id").iloc[-1]
    assert last["latency_ms"] == pytest.approx(
        predict(Network.from_json(last["config"]), table, RESOLUTION, 10).total_ms)
    # A resumed run keeps the record of the table it started from, not the table as it resumes.
    assert main(["search", "--resume", str(run), "--trials", "4"]) == 0
    assert len(Table(path, ORT)) > 0
    assert yaml.safe_load((run / "run.yaml").read_text())["latency_table"] == \
        record["latency_table"]


@pytest.fixture
def board_cluster():
    """A Ray cluster of two nodes on this machine, the second advertising the resource 'board'
    (at the machine's own address: a driver started by the command joins it there)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1,
                                                           "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"board": 1})
    try:
        cluster.connect()  # the board's node id, from the cluster (Ray 2.9's Node lacks it)
        board = next(n["NodeID"] for n in ray.nodes() if n["Resources"].get("board"))
        ray.shutdown()
        yield cluster.address, board
    finally:
        cluster.shutdown()


@pytest.mark.slow
def test_a_table_measured_on_a_ray_node_is_that_nodes_and_a_search_uses_it(
        tmp_path, capsys, board_cluster):
    import socket

    import pandas as pd

    address, board = board_cluster
    path, run = tmp_path / "board.csv", tmp_path / "run"
    assert main(["latency", "build", *SPACE, "--latency-table", str(path), "--json",
                 "--address", address, "--on", "board"]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["node_id"] == board and built["measured"] == len(_units(path)) > 0
    fingerprint = path.read_text().splitlines()[2]
    assert fingerprint == f"# fingerprint: {built['fingerprint']}"
    assert fingerprint.endswith(f"; host={socket.gethostname()}")
    assert main(["search", "--budget", "10MF", "--resolution", str(RESOLUTION), "--num-classes",
                 "10", "--trials", "4", "--latency-table", str(path), "--address", address,
                 "--latency-on", "board", "--out", str(run)]) == 0
    trials = pd.read_csv(run / "trials.csv")
    assert (trials["status"] == "complete").sum() == 4
    assert trials["latency_ms"].notna().any()
    for argv, message in ((["--on", "board"], "give the cluster's --address"),
                          (["--on", "phone", "--address", address], "advertises the resource")):
        assert main(["latency", "build", *SPACE, "--latency-table", str(path), *argv]) == 2
        assert message in capsys.readouterr().err


def test_a_measuring_process_that_dies_is_one_error_and_the_next_forks_anew():
    from nas.latency.timing import MeasurementDied, Timing, in_own_process

    with pytest.raises(MeasurementDied, match="ended abruptly"):
        in_own_process(Timing(), os._exit, 9)  # as a kill -9 or the OOM killer would end it
    assert in_own_process(Timing(), abs, -3) == 3
