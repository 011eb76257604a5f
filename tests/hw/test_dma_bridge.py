"""hw.dma.DmaBridge in Amaranth's simulator: one Python transaction per burst, exact ack edges.

The testbench plays both sides: the device (a DmaBus initiator that raises ``req`` after an
edge, moves to its next word at each edge that samples ``ack`` and drops ``req`` at the last)
and Python (at the request edge it gives ``mem_cycles``/``fault`` and, for a memory-to-device
burst, fills the bridge's memory). The edges at which the device samples each ``ack`` are
checked against the rule of the module docstring: words ``0 .. n - 2`` at ``F .. F + n - 2``
after the request edge with ``F = max(B - n + 1, 2)``, the last at ``max(B, n + 1, M)``.
"""
from __future__ import annotations

import gc
import random
from types import SimpleNamespace
from dataclasses import dataclass, field

import pytest
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from hw.an2.registers import vc_entry_layout
from hw.bus import OWNER_WIDTH, DmaBus, DmaFeature
from hw.dma import ERR_CYCLES, DmaBridge
from sim.bindings import BindingError, HdlDriver
from sim.bindings.amaranth import AmaranthAccess, AmaranthDriver, add_clock, sim_time_ps
from sim.bindings.dma import DmaServer
from sim.kernel import Kernel
from sim.memory import Memory
from sim.platforms.decstation import DECSTATION_5000_125_AEGIS as PROFILE
from sim.time import Clock

W_CYCLES, R_CYCLES = 66, 68


@dataclass
class Burst:
    write: bool
    n: int
    mem_cycles: int = 0
    fault: bool = False
    drop_after: int | None = None      # the device abandons the burst after this many words
    gap: int = 1                       # idle edges before the request
    owner: int = 0                     # the owner tag (on a bus with "owner")
    words: list[int] = field(default_factory=list)


@dataclass
class Seen:
    acks: list[int]                    # edges (after the request edge) sampling each ack
    err: int | None                    # the edge sampling err (None: no err)
    toggles: int                       # req_toggle changes during the burst
    data: list[int]                    # words the device received (memory-to-device)
    mem: list[int]                     # the bridge's memory after the burst
    taken: int
    data_toggle: int
    fault_count: int


def expected_acks(b: Burst, fixed: int) -> list[int]:
    first = max(fixed - b.n + 1, 2)
    return [first + i for i in range(b.n - 1)] + [max(fixed, b.n + 1, b.mem_cycles)]


def simulate(bursts: list[Burst], *, write_cycles=W_CYCLES, read_cycles=R_CYCLES,
             depth=64, features=()) -> list[Seen]:
    br = DmaBridge(write_cycles=write_cycles, read_cycles=read_cycles, depth=depth,
                   features=features)
    has_err = "err" in features
    sim = Simulator(br)
    sim.add_clock(80e-9)
    seen: list[Seen] = []
    d = br.dma

    async def bench(ctx):
        await ctx.tick()
        for b in bursts:
            for _ in range(b.gap):
                await ctx.tick()
            before = ctx.get(br.req_toggle)
            # The device raises req just after an edge, with its first word.
            ctx.set(d.req, 1)
            ctx.set(d.addr, 0x1000)
            ctx.set(d.count, b.n)
            ctx.set(d.write, int(b.write))
            if b.write:
                ctx.set(d.w_data, b.words[0])
            # Python, woken by req_toggle at this same instant.
            assert ctx.get(br.req_toggle) != before
            assert (ctx.get(br.addr), ctx.get(br.count), ctx.get(br.write)) == (0x1000, b.n, b.write)
            ctx.set(br.mem_cycles, b.mem_cycles)
            ctx.set(br.fault, int(b.fault))
            if not b.write and not b.fault:  # a refused read: Python fills nothing
                for i, w in enumerate(b.words):
                    ctx.set(br.mem.data[i], w)
            acks, data, toggles, edge, word, err_edge = [], [], 0, 0, 0, None
            last_toggle = ctx.get(br.req_toggle)
            while word < b.n:
                _, _, ack, r_data, err = await ctx.tick().sample(
                    d.ack, d.r_data, d.err if has_err else d.ack)
                err = err if has_err else 0
                edge += 1
                if ctx.get(br.req_toggle) != last_toggle:
                    toggles += 1
                    last_toggle = ctx.get(br.req_toggle)
                if edge > 100_000:
                    raise AssertionError("the burst never ended")
                if err:                      # the device drops req at the edge sampling err
                    assert not ack
                    err_edge = edge
                    ctx.set(d.req, 0)
                    break
                if not ack:
                    continue
                acks.append(edge)
                data.append(r_data)
                word += 1
                if word == b.drop_after or word == b.n:
                    ctx.set(d.req, 0)
                    break
                if b.write:
                    ctx.set(d.w_data, b.words[word])
            await ctx.tick()
            seen.append(Seen(acks, err_edge, toggles, data, [ctx.get(br.mem.data[i]) for i in range(depth)],
                             ctx.get(br.taken), ctx.get(br.data_toggle), ctx.get(br.fault_count)))

    sim.add_testbench(bench)
    sim.run()
    return seen


def words(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.getrandbits(32) for _ in range(n)]


@pytest.mark.parametrize("write", [True, False], ids=["to-memory", "from-memory"])
@pytest.mark.parametrize("mem_cycles", [0, 30, 66, 68, 69, 200],
                         ids=lambda m: f"memory-{m}")
def test_acks_are_fixed_unless_the_memory_is_later(write, mem_cycles) -> None:
    b = Burst(write, 64, mem_cycles, words=words(64, mem_cycles))
    s, = simulate([b])
    fixed = W_CYCLES if write else R_CYCLES
    assert s.acks == expected_acks(b, fixed)
    assert s.acks[-1] == max(fixed, mem_cycles)
    assert s.toggles == 0                    # req_toggle changed once, at the request edge
    if write:
        assert s.mem == b.words and s.data_toggle == 1
    else:
        assert s.data == b.words and s.data_toggle == 0
    assert s.taken == 64 and s.fault_count == 0


def test_back_to_back_bursts_and_a_naive_model_sweep() -> None:
    rng = random.Random(1)
    bursts = []
    for i in range(40):
        n = rng.randint(1, 64)
        bursts.append(Burst(rng.random() < 0.5, n, rng.choice([0, rng.randint(0, 150)]),
                            gap=rng.randint(1, 3), words=words(n, i)))
    for b, s in zip(bursts, simulate(bursts)):
        assert s.acks == expected_acks(b, W_CYCLES if b.write else R_CYCLES), b
        if b.write:
            assert s.mem[:b.n] == b.words
        else:
            assert s.data == b.words


def test_short_bursts_need_at_least_one_cycle_a_word() -> None:
    """With the minimum fixed time (2: the media bridge) a word is acknowledged each cycle
    from the second edge after the request."""
    bursts = [Burst(True, 1, words=[5]), Burst(False, 128, words=words(128, 3)),
              Burst(True, 128, words=words(128, 4))]
    seen = simulate(bursts, write_cycles=2, read_cycles=2, depth=128)
    assert seen[0].acks == [2]
    assert seen[1].acks == list(range(2, 130)) and seen[1].data == bursts[1].words
    assert seen[2].acks == list(range(2, 130)) and seen[2].mem == bursts[2].words


@pytest.mark.parametrize("write", [True, False], ids=["to-memory", "from-memory"])
def test_a_refused_burst_moves_nothing_on_the_fixed_time(write) -> None:
    first = Burst(True, 64, words=words(64, 7))
    refused = Burst(write, 64, mem_cycles=0, fault=True, words=words(64, 8))
    s1, s2 = simulate([first, refused])
    assert s2.acks == expected_acks(refused, W_CYCLES if write else R_CYCLES)
    assert s2.mem == first.words             # a refused write leaves the words untouched
    if not write:
        assert s2.data == [0] * 64           # and a refused read delivers zeros
    assert s2.fault_count == 1


@pytest.mark.parametrize("write", [True, False], ids=["to-memory", "from-memory"])
def test_a_refused_burst_ends_with_err_at_the_earliest_registered_edge(write) -> None:
    """On a bus with err a refused burst acknowledges no word: err is sampled at the second
    edge after the request's (ERR_CYCLES), the device drops req there, and the next burst is
    served on the ordinary rule."""
    first = Burst(True, 64, words=words(64, 11))
    refused = Burst(write, 64, mem_cycles=0, fault=True, words=words(64, 12))
    after = Burst(not write, 64, mem_cycles=90, words=words(64, 13))
    s1, s2, s3 = simulate([first, refused, after], features={"err"})
    assert s1.acks == expected_acks(first, W_CYCLES) and s1.err is None
    assert s2.acks == [] and s2.err == ERR_CYCLES == 2 and s2.taken == 0
    assert s2.mem == first.words and s2.fault_count == 1
    assert s2.data_toggle == s1.data_toggle              # nothing for Python to land
    assert s3.acks == expected_acks(after, W_CYCLES if after.write else R_CYCLES)
    assert s3.err is None and s3.fault_count == 1
    assert (s3.mem if after.write else s3.data) == after.words


def test_an_abandoned_burst_stops_and_the_next_one_is_served() -> None:
    dropped = Burst(True, 64, words=words(64, 9), drop_after=10)
    after = Burst(False, 64, mem_cycles=90, words=words(64, 10))
    s1, s2 = simulate([dropped, after])
    assert s1.acks == expected_acks(Burst(True, 64), W_CYCLES)[:10]
    assert s1.taken == 10 and s1.data_toggle == 1 and s1.mem[:10] == dropped.words[:10]
    assert s2.acks == expected_acks(after, R_CYCLES) and s2.data == after.words


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters_are_named() -> None:
    for kwargs, error, match in (
            (dict(write_cycles=1, read_cycles=68), ValueError, "write_cycles"),
            (dict(write_cycles=66, read_cycles=68.0), TypeError, "read_cycles"),
            (dict(write_cycles=66, read_cycles=68, depth=300), ValueError, "depth 300")):
        with pytest.raises(error, match=match):
            DmaBridge(**kwargs)
    gc.collect()    # the half-built bridges warn when collected: here, under the filter


# ---- DmaServer: the bridge served from a sim.memory.Memory, no device behind it --------------
CLOCK = Clock(80_000, "dev")
SERVER_W, SERVER_R = 10, 12      # fixed times shorter than the memory's: the memory decides


def serve(bursts: list[Burst], *, rival: list[int] = (), check=None, features=(),
          requester_of=None, owners: dict[int, object] | None = None):
    """A testbench device makes ``bursts`` on a bare bridge served by a DmaServer; another
    master reads memory after each of the ``rival`` gaps; ``owners`` maps pages to owners.
    Returns ((S, E) per burst, words the device
    read, memory, server); a burst ended by err has ``None`` for its words."""
    bridge = DmaBridge(write_cycles=SERVER_W, read_cycles=SERVER_R, depth=16, features=features)
    sim = Simulator(bridge)
    add_clock(sim, CLOCK)
    k = Kernel()
    driver = AmaranthDriver(sim, k)
    mem = Memory(k, 1 << 16, profile=PROFILE, name="t.mem")
    mem.write(0, random.Random(5).randbytes(1 << 16))
    if check is not None:
        mem.access_check = check
    for page, owner in (owners or {}).items():
        mem.set_owner(page, owner)
    server = DmaServer(AmaranthAccess(bridge, driver), driver, CLOCK, mem, prefix="", mem="mem",
                       requester_of=requester_of, name="t.dma")
    has_err = "err" in features
    spans, got, d = [], [], bridge.dma

    async def device(ctx):
        for b in bursts:
            for _ in range(b.gap):
                await ctx.tick()
            start = sim_time_ps(sim)
            for sig, v in ((d.req, 1), (d.addr, 0x1000 + 0x40 * len(spans)), (d.count, b.n),
                           (d.write, int(b.write))):
                ctx.set(sig, v)
            if "owner" in features:
                ctx.set(d.owner, b.owner)
            if b.write:
                ctx.set(d.w_data, b.words[0])
            word, data = 0, []
            while word < b.n:
                _, _, ack, r_data, err = await ctx.tick().sample(
                    d.ack, d.r_data, d.err if has_err else d.ack)
                if has_err and err:
                    data = None
                    break
                if ack:
                    data.append(r_data)
                    word += 1
                    if b.write and word < b.n:
                        ctx.set(d.w_data, b.words[word])
            ctx.set(d.req, 0)
            spans.append((start, sim_time_ps(sim)))
            got.append(data)

    async def other_master():
        for gap in rival:
            await k.sleep_until(k.now + gap)
            await mem.dma_read(0x8000, 64)

    async def keep_alive():
        await k.sleep_until(400 * CLOCK.period * len(bursts))

    k.spawn(other_master())
    k.spawn(keep_alive())
    sim.add_testbench(device)
    sim.run()
    return spans, got, bytes(mem.data), server


def test_dma_server_ends_bursts_where_the_memory_does() -> None:
    """Each burst ends at the later of the fixed time and the first edge at or after the
    memory's completion, the memory being called at the request edge (a replay on a model
    memory checks it), with another master queueing; words land and are read as the memory
    holds them."""
    rng = random.Random(8)
    bursts = [Burst(rng.random() < 0.5, rng.randint(1, 16), words=words(16, i), gap=rng.randint(1, 4))
              for i in range(30)]
    rival = [rng.randrange(0, 80 * CLOCK.period) + 3 for _ in range(20)]
    spans, got, memory, server = serve(bursts, rival=rival)
    assert len(spans) == 30 and server.bursts == 30 and server.faults == 0

    # Replay: the memory is called at each request edge S; the burst ends at
    # max(S + fixed, n + 1 cycles, the first edge at or after the memory's completion).
    k = Kernel()
    ref = Memory(k, 1 << 16, profile=PROFILE)
    ref.write(0, random.Random(5).randbytes(1 << 16))
    ends, reads = [], []

    async def replay():
        for i, (b, (s, _)) in enumerate(zip(bursts, spans)):
            await k.sleep_until(s)
            addr = 0x1000 + 0x40 * i
            if b.write:
                await ref.dma_write(addr, b"".join(w.to_bytes(4, "little") for w in b.words[:b.n]))
            else:
                reads.append(await ref.dma_read(addr, 4 * b.n))
            fixed = SERVER_W if b.write else SERVER_R
            ends.append(max(s + max(fixed, b.n + 1) * CLOCK.period, CLOCK.edge_at_or_after(k.now)))

    async def other_master():
        for gap in rival:
            await k.sleep_until(k.now + gap)
            await ref.dma_read(0x8000, 64)
    k.spawn(replay())
    k.spawn(other_master())
    k.run()
    assert [e for _, e in spans] == ends
    assert memory == bytes(ref.data)
    assert [b"".join(w.to_bytes(4, "little") for w in g) for g, b in zip(got, bursts)
            if not b.write] == reads
    assert server.bytes_written == sum(4 * b.n for b in bursts if b.write)


@pytest.mark.parametrize("features", [{"err"}, ()], ids=["err", "no-err"])
def test_dma_server_refuses_what_the_memory_refuses(features) -> None:
    """A refused burst moves nothing; on a bus with err the device is told at the earliest
    edge, on one without the burst runs silently on the fixed time."""
    bursts = [Burst(True, 8, words=words(16, 1)), Burst(False, 8, words=[])]
    refuse = lambda page, owner, requester, write: page != 1      # noqa: E731
    spans, got, memory, server = serve(bursts, check=refuse, features=features)
    assert server.faults == 2 and isinstance(server.last_fault, PermissionError)
    assert server.bytes_read == server.bytes_written == 0
    assert memory == random.Random(5).randbytes(1 << 16)
    cycles = [(e - s) // CLOCK.period for s, e in spans]
    if features:
        assert got == [None, None] and cycles == [ERR_CYCLES, ERR_CYCLES]
    else:
        assert got[1] == [0] * 8 and cycles == [SERVER_W, SERVER_R]


def test_dma_server_checks_each_burst_for_the_owner_the_device_names() -> None:
    """On a bus with owner and err, each burst is checked for the requester its tag maps to:
    the owner's bursts (and the kernel's, tag 0) to its page move data on the memory's time,
    the other tag's are refused with err at the earliest edge and move nothing."""
    page = 1                                   # serve()'s bursts all fall in [0x1000, 0x2000)
    bursts = [Burst(True, 8, owner=1, words=words(16, 1)), Burst(True, 8, owner=2, words=words(16, 2)),
              Burst(False, 8, owner=1), Burst(False, 8, owner=2),
              Burst(True, 4, owner=0, words=words(16, 3)), Burst(False, 4, owner=2)]
    apps = {0: None, 1: "app1", 2: "app2"}
    spans, got, memory, server = serve(bursts, features={"owner", "err"},
                                       requester_of=apps.__getitem__, owners={page: "app1"})
    before = random.Random(5).randbytes(1 << 16)
    refused = [i for i, b in enumerate(bursts) if b.owner == 2]
    assert [i for i, g in enumerate(got) if g is None] == refused
    assert [(e - s) // CLOCK.period for i, (s, e) in enumerate(spans) if i in refused] \
        == [ERR_CYCLES] * 3
    assert server.bursts == 6 and server.faults == 3
    assert server.last_fault.requester == "app2" and server.last_fault.page == page
    assert server.bytes_written == 4 * (8 + 4) and server.bytes_read == 4 * 8
    for i, b in enumerate(bursts):
        addr, n = 0x1000 + 0x40 * i, 4 * b.n
        if b.write and b.owner != 2:
            assert memory[addr:addr + n] == b"".join(w.to_bytes(4, "little") for w in b.words[:b.n])
        else:                                   # reads, and the refused write, change nothing
            assert memory[addr:addr + n] == before[addr:addr + n]
        if not b.write and b.owner != 2:
            assert b"".join(w.to_bytes(4, "little") for w in got[i]) == before[addr:addr + n]


def test_an_unknown_owner_tag_is_named() -> None:
    with pytest.raises(BindingError, match="owner tag 3, which requester_of does not know"):
        serve([Burst(False, 2, owner=3)], features={"owner"}, requester_of={0: None}.__getitem__)


def test_dma_server_checks_its_arguments() -> None:
    k = Kernel()
    driver = HdlDriver(k)
    access = SimpleNamespace(port=lambda name: name)
    mem = Memory(k, 1 << 16, profile=PROFILE)
    with pytest.raises(TypeError, match="memory must be"):
        DmaServer(access, driver, CLOCK, bytearray(16), name="x")
    with pytest.raises(TypeError, match="clock must be"):
        DmaServer(access, driver, 80_000, mem, name="x")
    with pytest.raises(ValueError, match="name must be"):
        DmaServer(access, driver, CLOCK, mem, name="")
    with pytest.raises(TypeError, match="requester_of must be callable"):
        DmaServer(access, driver, CLOCK, mem, requester_of={1: "app"}, name="x")
    with pytest.raises(ValueError, match="requester .* or requester_of, not both"):
        DmaServer(access, driver, CLOCK, mem, requester="app", requester_of=str, name="x")
    DmaServer(access, driver, CLOCK, mem, prefix="b_", name="x")
    assert driver.watched_signals == ["b_req_toggle", "b_data_toggle"]


def test_the_owner_feature_adds_an_owner_tag_to_the_bus() -> None:
    bus = DmaBus(features={"owner", "err"})
    assert set(bus.members) == set(DmaBus().members) | {"err", "owner"}
    assert bus.members["owner"] == Out(OWNER_WIDTH)
    assert OWNER_WIDTH == vc_entry_layout["owner"].width   # the AN2 card's tag fits
    assert bus == DmaBus(features=[DmaFeature.Err, DmaFeature.Owner]) != DmaBus(features="err")
    assert repr(bus) == "DmaBus(addr_width=32, count_width=8, features={'err', 'owner'})"


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_a_server_mapping_owners_needs_a_bridge_with_owner() -> None:
    bridge = DmaBridge(write_cycles=4, read_cycles=4, depth=4, features={"err"})
    k = Kernel()
    sim = Simulator(bridge)
    driver = AmaranthDriver(sim, k)
    with pytest.raises(BindingError, match="no port 'owner'"):
        DmaServer(AmaranthAccess(bridge, driver), driver, CLOCK, Memory(k, 1 << 16, profile=PROFILE),
                  prefix="", mem="mem", requester_of=str, name="x")
    sim.run()                       # nothing to do: lets the driver's process end
    assert "owner" not in DmaBridge(write_cycles=4, read_cycles=4, depth=4).signature.members
    gc.collect()                    # the unused bridge warns when collected: here, under the filter
