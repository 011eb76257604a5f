"""Hardware parameters of a point (serveros.hardware) and the derived profiles they name
(sim.platforms.derived): today's machine unchanged, a faster clock paying more cycles for the
same memory, a 40 MHz server serving requests end to end, bad values refused."""
import dataclasses

import pytest

from serveros.experiments import figure_c, paper
from serveros.hardware import HARDWARE_PARAMS, PLANNED_PARAMS, Hardware, apply_hardware
from serveros.machines import MachineSpec, boot, client_spec, server_spec
from sim.cpu import CPU, MEMORY_STALL
from sim.kernel import Kernel
from sim.platforms import DECSTATION_5000_125_AEGIS, DECSTATION_5000_125_ULTRIX43, PROFILES
from sim.platforms.derived import BASES, DECOMPOSITION, by_name, derive, derived_name

AEGIS = DECSTATION_5000_125_AEGIS.name
ULTRIX = DECSTATION_5000_125_ULTRIX43.name


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    return paper.build_documents_image(tmp_path_factory.mktemp("hwimg") / "docs.img",
                                       sizes=(1024,))


# -- today's machine ------------------------------------------------------------------------------
def test_defaults_are_todays_machine():
    p = DECSTATION_5000_125_AEGIS
    assert HARDWARE_PARAMS["cpu_mhz"].default * 1_000_000 == p.cpu_hz.value
    assert HARDWARE_PARAMS["mem_cycle_ns"].default * 1000 == p.mem_cycle_ps.value
    assert HARDWARE_PARAMS["lance_buffer_kib"].default == 128
    hw = Hardware()
    assert hw.is_default() and hw.as_params() == {}
    assert Hardware(cpu_mhz=25, mem_cycle_ns=80, lance_buffer_kib=128) == hw
    assert Hardware.from_params({"cpu_mhz": 25.0}).is_default()
    specs = [server_spec("cheetah", None, clients=1), client_spec(0)]
    assert apply_hardware(specs, hw) == specs
    for base in BASES:
        assert derive(base) is PROFILES[base]
        assert derive(base, cpu_hz=25_000_000, mem_cycle_ps=80_000) is PROFILES[base]
        assert derived_name(base, cpu_hz=25_000_000) == base


@pytest.mark.parametrize("base", list(BASES))
def test_every_cycle_row_is_split_into_parts_that_add_up(base):
    p = PROFILES[base]
    rows = {name for name, c in p.costs() if c.unit.startswith("cycles")}
    assert set(DECOMPOSITION[base]) == rows
    for name, parts in DECOMPOSITION[base].items():
        assert sum(parts.values()) == pytest.approx(getattr(p, name).value, abs=1e-9), name
        assert set(parts) <= {"cycle", "cpi", "mem", "miss", "copy"}


# -- derived profiles -----------------------------------------------------------------------------
def test_a_faster_clock_charges_more_cycles_per_miss_and_fewer_seconds_per_instruction():
    slow, fast = PROFILES[AEGIS], PROFILES[f"{AEGIS}@cpu40MHz"]
    assert fast.cpu_hz.value == 40_000_000 and fast.cycle_ps == 25_000
    # memory times are times: the same 400 ns read miss, 16 cycles instead of 10
    assert fast.word_read_miss_ps.value == slow.word_read_miss_ps.value
    assert fast.word_read_miss_ps.value / fast.cycle_ps == 16
    assert fast.io_pio_write_ps == slow.io_pio_write_ps
    assert fast.kernel_cpi.value > slow.kernel_cpi.value
    assert fast.kernel_cpi.value * fast.cycle_ps < slow.kernel_cpi.value * slow.cycle_ps
    assert fast.copy_uncached_cycles_per_word.value > slow.copy_uncached_cycles_per_word.value
    assert fast.checksum_cached_cycles_per_word == slow.checksum_cached_cycles_per_word

    def run(profile):
        k = Kernel()
        cpu = CPU(k, profile, "cpu")
        marks = {}

        async def main():
            await cpu.copy(4096, src=cpu.region("a", 4096), dst=cpu.region("b", 4096))
            marks["copy"] = cpu.report().by_category[MEMORY_STALL].cycles
            t = k.now
            await cpu.path("p", 1000, code_bytes=64)
            marks["path_ps"] = k.now - t
        k.spawn(main(), name="t")
        k.run()
        return marks

    a, b = run(slow), run(fast)
    assert b["copy"] > a["copy"] > 0                    # more stall cycles per miss
    assert b["path_ps"] < a["path_ps"]                  # but each instruction takes less time


def test_a_slower_memory_costs_more_and_names_itself():
    p = PROFILES[f"{ULTRIX}@mem120ns"]
    base = PROFILES[ULTRIX]
    assert p.mem_cycle_ps.value == 120_000 and p.word_read_miss_ps.value == 600_000
    assert p.word_write_ps.value == 360_000 and p.cpu_hz == base.cpu_hz
    assert p.dma_ps(256, False) == base.dma_ps(256, False) * 120 // 80
    assert p.syscall_cycles.value > base.syscall_cycles.value
    assert p.description.startswith("DECstation 5000/125 derived")
    assert all(c.source.strip() for _, c in p.costs())


def test_a_fast_memory_keeps_the_copy_loop_at_its_issue_rate():
    p = PROFILES[f"{AEGIS}@cpu12.5MHz,mem40ns"]
    issue = p.memory.copy_issue_cycles_per_word.value
    assert p.copy_cached_cycles_per_word.value == issue
    assert p.copy_uncached_cycles_per_word.value > issue


def test_a_derived_name_rebuilds_the_same_profile_anywhere():
    name = derived_name(ULTRIX, cpu_hz=40_000_000, mem_cycle_ps=60_000)
    assert name == f"{ULTRIX}@cpu40MHz,mem60ns"
    a = by_name(name)
    by_name.cache_clear()                  # another process: nothing registered, same profile
    assert by_name(name) == a and name in PROFILES and name not in list(PROFILES)


@pytest.mark.parametrize("name, what", [
    (f"{AEGIS}@cpu33MHz", "cpu_hz"),
    (f"{AEGIS}@cpu40.0MHz", "not canonical"),
    (f"{AEGIS}@mem60ns,cpu40MHz", "not canonical"),
    (f"{AEGIS}@cpu25MHz", "not canonical"),
    (f"{AEGIS}@mem200ns", "mem_cycle_ps"),
    (f"{AEGIS}@fast", "unknown part"),
    ("decstation-5000-200-ultrix@cpu40MHz", "starts from one of"),
])
def test_bad_derived_names_are_refused(name, what):
    assert name not in PROFILES
    with pytest.raises(ValueError, match=what):
        by_name(name)
    with pytest.raises(ValueError, match=what):
        MachineSpec("m", name, "none", bytes(4))


# -- Hardware and apply_hardware ------------------------------------------------------------------
def test_apply_hardware_changes_the_server_only():
    specs = [server_spec("ncsa", None, clients=2), client_spec(0), client_spec(1)]
    hw = Hardware.from_params({"cpu_mhz": 40, "mem_cycle_ns": 60, "lance_buffer_kib": 64})
    assert hw.as_params() == {"cpu_mhz": 40, "mem_cycle_ns": 60, "lance_buffer_kib": 64}
    assert Hardware(cpu_mhz=31.25).as_params() == {"cpu_mhz": 31.25}
    out = apply_hardware(specs, hw)
    assert out[0].profile == f"{ULTRIX}@cpu40MHz,mem60ns"
    assert out[0].device("le0").params["ram_bytes"] == 64 * 1024
    assert out[0].device("le0").params["mac"] == specs[0].device("le0").params["mac"]
    assert out[1:] == specs[1:]
    assert dataclasses.replace(out[0], profile=specs[0].profile,
                               devices=specs[0].devices) == specs[0]
    assert hw.values() == {"cpu_mhz": 40, "mem_cycle_ns": 60, "lance_buffer_kib": 64}
    assert Hardware(cpu_mhz=16).values()["mem_cycle_ns"] == 80


@pytest.mark.parametrize("params, what", [
    ({"cpu_mhz": 33}, r"cpu_mhz: 33 is not allowed \(one of 12.5, 16, 20, 25, 31.25, 40 MHz\)"),
    ({"cpu_mhz": "40"}, "cpu_mhz: '40' is not allowed"),
    ({"cpu_mhz": True}, "cpu_mhz: True"),
    ({"mem_cycle_ns": 30}, r"mem_cycle_ns: 30 is not allowed \(40 .. 120 ns\)"),
    ({"mem_cycle_ns": 60.5}, "mem_cycle_ns: 60.5"),
    ({"lance_buffer_kib": 256}, r"lance_buffer_kib: 256 is not allowed \(one of 64, 128 KiB\)"),
    ({"clock": 40}, "unknown hardware parameter 'clock'"),
    ({"network": "an2"}, "network is not a parameter of the server's hardware"),
    ({name: 1 for name in list(PLANNED_PARAMS)[:1]}, "is planned"),
])
def test_bad_values_are_refused(params, what):
    with pytest.raises(ValueError, match=what):
        Hardware.from_params(params)


def test_hardware_that_cannot_apply_is_refused():
    an2 = [server_spec("cheetah", None, clients=1, network="an2")]
    with pytest.raises(ValueError, match="lance_buffer_kib: server server has no LANCE card"):
        apply_hardware(an2, Hardware(lance_buffer_kib=64))
    other = [MachineSpec("m", "decstation-5000-200-ultrix", "ultrix", bytes(4), 1 << 20)]
    with pytest.raises(ValueError, match="apply to the DECstation 5000/125"):
        apply_hardware(other, Hardware(cpu_mhz=40))
    with pytest.raises(ValueError, match="Hardware"):
        apply_hardware(an2, {"cpu_mhz": 40})
    with pytest.raises(ValueError, match="MachineSpecs"):
        apply_hardware([], Hardware(cpu_mhz=40))


# -- end to end -----------------------------------------------------------------------------------
def _serve(image, hw: Hardware, requests: int = 6) -> dict:
    """Cheetah serving one client ``requests`` times the 1 KiB document on ``hw``."""
    from serveros.machines import boot, server_ip
    from serveros.simulation import Simulation
    from sw.clients.http import HttpClient

    k = Kernel()
    specs = apply_hardware(paper.paper_machines("cheetah", 1, "pentium", image, 5), hw)
    net = figure_c.network_media(k, specs, "ethernet", seed=5)
    host, client = Simulation(k, specs, media=net.media).hosts.values()
    net.connect([host, client])
    out = {}

    async def main():
        await boot(host)
        await paper.server_factory("cheetah")(host).start()
        host.cpu.reset_stats()
        http = HttpClient(client, server_ip(), paper.document_path(1024), requests)
        await k.spawn(http.run(), name="client")
        report = host.cpu.report()
        out.update(profile=host.cpu.profile.name, ok=sum(r.ok for r in http.records),
                   rings=host.extra["drivers"]["le0"].layout.rings,
                   busy_ps=report.busy_ps, busy_cycles=report.busy_ps / report.cycle_ps)
    k.spawn(main(), name="experiment")
    k.run()
    return out


def test_a_40mhz_server_runs_end_to_end(image):
    today, fast = _serve(image, Hardware()), _serve(image, Hardware(cpu_mhz=40))
    assert today["profile"] == AEGIS and fast["profile"] == f"{AEGIS}@cpu40MHz"
    assert today["ok"] == fast["ok"] == 6
    assert (today["rings"].rx, today["rings"].tx) == (64, 16)
    assert fast["busy_cycles"] > today["busy_cycles"]      # memory costs more cycles
    assert fast["busy_ps"] < today["busy_ps"]              # the work takes less time


def test_a_64kib_lance_buffer_reaches_the_driver(image):
    small = _serve(image, Hardware(lance_buffer_kib=64), requests=3)
    assert small["ok"] == 3 and (small["rings"].rx, small["rings"].tx) == (32, 8)
    assert small["profile"] == AEGIS


def test_ultrix_kernel_costs_follow_the_cpi_of_a_derived_profile():
    from sw.ultrix.kernel import UltrixCosts, costs_at
    assert costs_at(PROFILES[ULTRIX]) == UltrixCosts()
    fast = PROFILES[f"{ULTRIX}@cpu40MHz"]
    c = costs_at(fast)
    ratio = fast.kernel_cpi.value / PROFILES[ULTRIX].kernel_cpi.value
    assert c.mbuf == pytest.approx(UltrixCosts().mbuf * ratio) and c.mbuf > UltrixCosts().mbuf
    assert c.read_block_instructions == UltrixCosts().read_block_instructions


def test_a_worker_process_builds_the_same_server_from_the_spec_alone():
    """A sweep's point runs in another process: the pickled spec is all it gets."""
    import pickle
    import subprocess
    import sys

    from sim.platforms import profile_table
    spec = apply_hardware([server_spec("ncsa", None)], Hardware(cpu_mhz=20, mem_cycle_ns=100))[0]
    code = ("import pickle, sys; from sim.platforms import PROFILES, profile_table; "
            "spec = pickle.loads(sys.stdin.buffer.read()); "
            "sys.stdout.write(repr(profile_table(PROFILES[spec.profile])))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(spec),
                         capture_output=True, check=True).stdout.decode()
    assert out == repr(profile_table(PROFILES[spec.profile]))
    assert spec.profile == f"{ULTRIX}@cpu20MHz,mem100ns"


def test_a_40mhz_point_runs_through_run_point(image):
    """The sweep's way in: a Point with hardware (sorted pairs, as Hardware.as_params)."""
    fast_hw = tuple(sorted(Hardware(cpu_mhz=40).as_params().items()))
    today, fast = (paper.run_point(paper.Point(("b",), "cheetah", 1024, 1, 5, "model", 1,
                                               hardware=hw), image)[0]
                   for hw in ((), fast_hw))
    assert today["ok"] == fast["ok"] == 5 and today["failed"] == fast["failed"] == 0
    assert fast["cpu_cycles_per_doc_byte"] > today["cpu_cycles_per_doc_byte"]
    assert fast["throughput_rps"] > today["throughput_rps"]


@pytest.mark.parametrize("server", ["ncsa", "harvest"])
def test_an_ultrix_servers_own_work_per_request_follows_the_cpi_of_a_derived_profile(image,
                                                                                      server):
    """NCSA's and Harvest's user-level work per request is an estimate in instructions at the
    3MIN's CPI: the same on the paper's machine, re-priced at a derived profile's CPI."""
    from serveros.simulation import Simulation
    from sw.ultrix.kernel import cpi_scale

    got = {}
    for hw in (Hardware(), Hardware(cpu_mhz=40)):
        k = Kernel()
        specs = apply_hardware(paper.paper_machines(server, 1, "pentium", image, 5), hw)
        net = figure_c.network_media(k, specs, "ethernet", seed=5)
        host = next(iter(Simulation(k, specs, media=net.media).hosts.values()))

        async def main():
            await boot(host)
            got[hw] = paper.server_factory(server)(host)
        k.spawn(main(), name="boot")
        k.run()
    today, fast = got[Hardware()], got[Hardware(cpu_mhz=40)]
    assert today._request_cycles == today.options.request_cycles
    scale = cpi_scale(fast.uk.profile)
    assert scale > 1 and fast._request_cycles == pytest.approx(fast.options.request_cycles
                                                               * scale)
