"""The event kernel: ordering, sleeps, events, queues, wait-for-any, joins, failures, determinism."""
import random

import pytest

from sim.kernel import DONE, Cancelled, Event, Kernel, Queue, QueueEmpty, QueueFull, SimulationError
from sim.time import MS, NS, US, Clock, fmt, ps


def _spawn_and_cancel_at_10(k: Kernel, coro):
    """Spawn ``coro`` and cancel its task at t = 10 from another task; returns the task."""
    async def killer(v):
        await k.sleep(10)
        v.cancel()
    v = k.spawn(coro)
    k.spawn(killer(v))
    return v


def test_sleep_advances_exact_picoseconds():
    k = Kernel()
    seen = []

    async def t():
        await k.sleep(3)
        seen.append(k.now)
        await k.sleep(40 * NS)
        seen.append(k.now)
        await k.sleep_until(1 * US)
        seen.append(k.now)

    k.spawn(t())
    assert k.run() == 1 * US
    assert seen == [3, 3 + 40_000, 1_000_000]


def test_simultaneous_entries_run_in_scheduling_order():
    k = Kernel()
    order = []

    async def t(name):
        await k.sleep(10)
        order.append(name)
        await k.sleep(0)
        order.append(name + "'")

    for name in "cab":
        k.spawn(t(name), name=name)
    k.run()
    assert order == ["c", "a", "b", "c'", "a'", "b'"]


def test_event_set_wakes_all_waiters_with_value_and_stays_set():
    k = Kernel()
    ev = Event(k, "go")
    got = []

    async def waiter(i):
        v = await ev
        got.append((k.now, i, v))

    async def setter():
        await k.sleep(5 * US)
        ev.set("payload")

    for i in range(3):
        k.spawn(waiter(i))
    k.spawn(setter())
    k.run()
    assert got == [(5 * US, 0, "payload"), (5 * US, 1, "payload"), (5 * US, 2, "payload")]

    async def late():
        return await ev.wait()
    t = k.spawn(late())
    k.run()
    assert t.result == "payload" and k.now == 5 * US


def test_pulse_does_not_latch_and_clear_resets():
    k = Kernel()
    ev = k.event()
    woke = []

    async def waiter():
        woke.append(await k.timeout(ev, 10 * US))

    async def driver():
        ev.pulse(1)                    # nobody waits yet: lost, as a pulse should be
        await k.sleep(1 * US)
        k.spawn(waiter())
        await k.sleep(1 * US)
        ev.pulse(2)
    k.spawn(driver())
    k.run()
    assert woke == [(0, 2)]
    assert not ev.is_set


def test_wait_any_first_wins_and_losers_are_cancelled():
    k = Kernel()
    a, b = k.event("a"), k.event("b")
    results = []

    async def t():
        results.append(await k.wait_any(a, k.sleep(7 * US), b))
        # the timer branch must not fire later; the task must not be resumed twice
        results.append(await k.wait_any(k.sleep(100 * US)))

    async def setter():
        await k.sleep(3 * US)
        b.set("B")
        a.set("A")                      # same instant, later: loses

    k.spawn(t())
    k.spawn(setter())
    k.run()
    assert results == [(2, "B"), (0, None)]
    assert k.now == 103 * US
    assert not a._waiters and not b._waiters


def test_timeout_expires():
    k = Kernel()
    ev = k.event()

    async def t():
        return await k.timeout(ev, 2 * MS)
    task = k.spawn(t())
    k.run()
    assert task.result == (1, None) and k.now == 2 * MS


def test_join_returns_result_and_gather_keeps_order():
    k = Kernel()

    async def child(d, v):
        await k.sleep(d)
        return v

    async def parent():
        ts = [k.spawn(child(d, v)) for d, v in ((30, "x"), (10, "y"), (20, "z"))]
        return await k.gather(ts)
    p = k.spawn(parent())
    k.run()
    assert p.result == ["x", "y", "z"] and k.now == 30


def test_daemons_do_not_keep_run_going_but_run_until_does():
    k = Kernel()
    ticks = []

    async def daemon():
        while True:
            await k.sleep(10)
            ticks.append(k.now)

    async def main():
        await k.sleep(35)
    k.spawn(daemon(), daemon=True)
    k.spawn(main())
    assert k.run() == 35
    assert ticks == [10, 20, 30]
    k.run(until=60)
    assert ticks == [10, 20, 30, 40, 50, 60] and k.now == 60


def test_task_failure_raises_with_task_name_and_time():
    k = Kernel()

    async def bad():
        await k.sleep(5)
        raise ValueError("boom")
    k.spawn(bad(), name="bad-task")
    with pytest.raises(SimulationError, match=r"bad-task.*t=5"):
        k.run()


def test_awaiting_foreign_awaitable_is_a_clear_error():
    import asyncio
    k = Kernel()

    async def t():
        await asyncio.sleep(0)
    k.spawn(t(), name="foreign")
    with pytest.raises(SimulationError, match="not a serveros kernel waitable"):
        k.run()


def test_sleep_into_past_rejected():
    k = Kernel()
    with pytest.raises(SimulationError):
        k.sleep(-1)
    with pytest.raises(SimulationError):
        k.call_at(-5, lambda: None)


def test_cancel_throws_into_task_and_stops_it():
    k = Kernel()
    log = []

    async def victim():
        try:
            await k.sleep(100)
            log.append("not reached")
        except Cancelled:
            log.append(("cancelled", k.now))
            raise

    v = _spawn_and_cancel_at_10(k, victim())
    k.run()
    assert log == [("cancelled", 10)] and v.done
    assert k.now == 10                  # the cancelled sleep does not drag time forward


def test_call_at_and_cancel():
    k = Kernel()
    hits = []
    k.call_at(50, lambda: hits.append(k.now))
    c = k.call_after(20, lambda: hits.append("cancelled"))
    c()
    k.run(until=100)
    assert hits == [50]


def test_hdl_style_driving_matches_own_clock():
    """Driving the kernel the way an HDL binding does (next_time / run_until) gives the same trace."""
    def program(k, trace):
        ev = k.event()

        async def a():
            for i in range(5):
                await k.sleep(1234 * (i + 1))
                trace.append((k.now, f"a{i}"))
                ev.set(i)

        async def b():
            for _ in range(5):
                v = await ev
                ev.clear()
                await k.sleep(7)
                trace.append((k.now, f"b{v}"))
        k.spawn(a())
        k.spawn(b())

    own, driven = [], []
    k1 = Kernel()
    program(k1, own)
    k1.run()
    k2 = Kernel()
    program(k2, driven)
    while (nt := k2.next_time()) is not None:
        k2.run_until(nt)
    assert k2.now == k1.now
    assert own == driven and len(own) == 10


def test_determinism_of_randomised_program():
    def run(seed):
        k = Kernel()
        rng = random.Random(seed)
        trace = []
        evs = [k.event(str(i)) for i in range(4)]

        async def worker(i):
            for _ in range(50):
                idx, v = await k.wait_any(evs[i], k.sleep(rng.randrange(1, 1000)))
                trace.append((k.now, i, idx))
                evs[rng.randrange(4)].pulse(i)
        for i in range(4):
            k.spawn(worker(i))
        k.run()
        return trace
    assert run(1) == run(1)
    assert run(1) != run(2)


def test_units_and_clock():
    assert ps(1.5, NS) == 1500
    with pytest.raises(ValueError):
        ps(0.25)  # a fraction of a picosecond
    c = Clock.from_hz(25_000_000)
    assert c.period == 40_000
    assert c.edge_at_or_after(80_000) == 80_000 and c.edge_after(80_000) == 120_000
    assert c.edge_at_or_after(80_001) == 120_000
    assert fmt(12_500_000) == "12.5 us"
    with pytest.raises(ValueError):
        Clock.from_hz(3)


def test_timeout_loser_is_cleaned_up_both_ways():
    k = Kernel()
    ev = k.event()
    got = []

    async def t():
        got.append(await k.timeout(ev, 5))       # expires: the event wait must be removed
        assert not ev._waiters
        got.append(await k.timeout(ev, 50))      # the event wins: the timer must not fire later
        got.append(await k.sleep(100))

    async def s():
        await k.sleep(20)
        ev.set("x")
    k.spawn(t())
    k.spawn(s())
    k.run()
    assert got == [(1, None), (0, "x"), None] and k.now == 120


def test_cancel_during_timeout_removes_waits():
    k = Kernel()
    ev = k.event()

    async def victim():
        await k.timeout(ev, 1000)

    v = _spawn_and_cancel_at_10(k, victim())
    k.run()
    assert v.done and not ev._waiters and k.now == 10


def test_cancel_a_task_in_a_plain_sleep_while_others_run() -> None:
    """The cancelled task's pending wake-up must not resume it later (it used to, and the
    run failed with 'cannot reuse already awaited coroutine')."""
    from sim.kernel import Kernel
    k = Kernel()
    log = []

    async def sleeper():
        await k.sleep(100)
        log.append("woke")

    async def other():
        await k.sleep(10)
        t.cancel()
        await k.sleep(500)
        log.append("other done")

    t = k.spawn(sleeper(), name="sleeper")
    k.spawn(other(), name="other")
    k.run()
    assert log == ["other done"]
    assert t.done and t.exception is None


def test_post_runs_fn_with_its_argument_in_scheduling_order():
    k = Kernel()
    hits = []
    k.post(50, hits.append, "late", late=True)
    k.post(50, hits.append, "first")
    k.call_at(50, lambda: hits.append("second"))
    k.run(until=100)
    assert hits == ["first", "second", "late"]
    with pytest.raises(SimulationError, match="in the past"):
        k.post(10, hits.append, None)


def test_timeouts_short_cut_only_when_nothing_can_intervene():
    """A timeout that ends before every other entry resumes at once (no heap round trip);
    one that an earlier entry can beat, or that ends past the running loop's horizon, does
    not. Either way the results and times are those of the plain heap path."""
    def program(k, got):
        ev = k.event()

        async def waiter():
            for _ in range(4):
                got.append((await k.timeout(ev, 100), k.now))

        async def setter():
            await k.sleep(250)
            ev.set("x")
        k.spawn(waiter())
        k.spawn(setter())

    own = []
    k1 = Kernel()
    program(k1, own)
    k1.run(until=150)                       # the horizon stops the second timeout's short cut
    assert own == [((1, None), 100)] and k1.now == 150
    k1.run()
    assert own == [((1, None), 100), ((1, None), 200), ((0, "x"), 250), ((0, "x"), 250)]

    driven = []
    k2 = Kernel()
    program(k2, driven)
    while (nt := k2.next_time()) is not None:
        k2.run_until(nt)
    assert driven == own


def test_reserved_place_orders_a_late_post_as_if_posted_then():
    k = Kernel()
    hits = []

    async def t():
        await k.sleep(7)
        seq = k.reserve()                      # our place, before what follows
        k.call_at(k.now, lambda: hits.append("posted after the reservation"))
        k.post_reserved(seq, k.now, hits.append, "reserved")   # pushed later, runs first
    k.spawn(t())
    k.run(until=100)
    assert hits == ["reserved", "posted after the reservation"]
    with pytest.raises(SimulationError, match="in the past"):
        k.post_reserved(k.reserve(), -1, hits.append, None)


def test_on_suspend_runs_once_when_the_task_next_awaits_or_ends():
    k = Kernel()
    log = []

    async def t():
        me = k.current
        me.on_suspend(lambda: log.append(("hook", k.now)))
        log.append("still running")
        await k.sleep(10)
        log.append(("resumed", k.now))
        me.on_suspend(lambda: log.append(("end hook", k.now)))
    k.spawn(t())
    k.run()
    assert log == ["still running", ("hook", 0), ("resumed", 10), ("end hook", 10)]


def test_a_task_that_handles_cancel_and_sleeps_is_not_cancelled_again():
    k = Kernel()
    log = []

    async def cleanup():
        try:
            await k.sleep(100)
        except Cancelled:
            await k.sleep(5)                   # the short-cut path: must not re-throw
            log.append(("cleaned up", k.now))

    v = _spawn_and_cancel_at_10(k, cleanup())
    k.run()
    assert log == [("cleaned up", 15)] and v.done and v.exception is None


def test_awaiting_done_neither_suspends_nor_lets_another_task_run():
    k = Kernel()
    log = []

    async def a():
        log.append("a1")
        await DONE                      # no suspension: b cannot run in between
        log.append("a2")
        return await DONE

    async def b():
        log.append("b")

    ta = k.spawn(a(), name="a")
    k.spawn(b(), name="b")
    events = k.events
    k.run()
    assert log == ["a1", "a2", "b"] and ta.result is None
    assert k.events - events == 2 and k.now == 0   # each task ran once


def test_cancelled_entries_do_not_pile_up_in_the_heap_and_live_ones_keep_their_order():
    """Timers cancelled long before they are due (a TCP's retransmission and TIME_WAIT timers)
    are dropped from the heap once it has grown: it stays small, and the live entries still
    run in (time, scheduling) order."""
    k = Kernel()
    ran = []

    async def churn():
        for i in range(20_000):
            cancel = k.call_at(k.now + 60 * MS + i, lambda: ran.append("dead"))
            cancel()
            if i % 1000 == 0:                      # a live entry now and then, same-time pairs
                k.call_at(k.now + 5 * MS, lambda i=i: ran.append((i, "a")))
                k.call_at(k.now + 5 * MS, lambda i=i: ran.append((i, "b")))
            await k.sleep(1)
        assert len(k._heap) < 3000
        await k.sleep(10 * MS)                     # the live entries run

    k.spawn(churn(), name="churn")
    k.run()
    assert ran == [(i, x) for i in range(0, 20_000, 1000) for x in "ab"]


# -- Queue ------------------------------------------------------------------------------------
def test_queue_wakes_getters_in_arrival_order_and_keeps_items_fifo():
    k = Kernel()
    q = Queue(k, name="q")
    got = []

    async def getter(tag, wait):
        await k.sleep(wait)
        for _ in range(2):
            got.append((tag, await q.get(), k.now))

    k.spawn(getter("b", 2))
    k.spawn(getter("a", 1))

    async def producer():
        await k.sleep(10)
        for item in range(4):
            q.put_nowait(item)
            await k.sleep(5)

    k.spawn(producer())
    k.run()
    # "a" waited first, so it gets the first item; each item wakes one getter, oldest first.
    assert got == [("a", 0, 10), ("b", 1, 15), ("a", 2, 20), ("b", 3, 25)]
    assert len(q) == 0


def test_queue_get_with_an_item_waiting_does_not_suspend():
    k = Kernel()
    q = Queue(k)
    q.put_nowait("x")
    q.put_nowait("y")
    seen = []

    async def t():
        seen.append(await q.get())
        seen.append(await q.get())

    k.spawn(t())
    k.run()
    # one entry: the task's start; neither get() went through the heap
    assert seen == ["x", "y"] and k.events == 1


def test_queue_puts_before_a_woken_getter_runs_cost_one_wake():
    k = Kernel()
    q = Queue(k)
    got = []

    async def t():
        while len(got) < 3:
            got.append(await q.get())

    k.spawn(t())
    k.run(until=0)
    before = k.events
    for item in "abc":
        q.put_nowait(item)
    k.run()
    assert got == ["a", "b", "c"] and k.events - before == 1


def test_queue_item_taken_by_get_nowait_sends_the_woken_getter_back_to_wait():
    k = Kernel()
    q = Queue(k)
    got = []

    async def t():
        got.append((await q.get(), k.now))

    k.spawn(t())
    k.run(until=0)
    q.put_nowait(1)
    assert q.get_nowait() == 1          # taken before the woken getter runs
    k.run(until=5)
    assert got == []
    q.put_nowait(2)
    k.run(until=6)
    assert got == [(2, 5)]


def test_bounded_queue_put_waits_for_room_and_nowait_calls_raise():
    k = Kernel()
    q = Queue(k, maxsize=2, name="small")
    done = []

    async def producer():
        for item in range(4):
            await q.put(item)
            done.append((item, k.now))

    async def consumer():
        await k.sleep(7)
        assert [await q.get() for _ in range(4)] == [0, 1, 2, 3]

    k.spawn(producer())
    k.spawn(consumer())
    k.run()
    assert done == [(0, 0), (1, 0), (2, 7), (3, 7)]
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.full() and q[0] == "a" and q[1] == "b"
    with pytest.raises(QueueFull, match="small is full"):
        q.put_nowait("c")
    q.get_nowait(), q.get_nowait()
    with pytest.raises(QueueEmpty, match="small is empty"):
        q.get_nowait()


def test_queue_getter_cancelled_while_waiting_is_not_woken():
    k = Kernel()
    q = Queue(k)
    got = []

    async def getter(tag):
        got.append((tag, await q.get()))

    v = _spawn_and_cancel_at_10(k, getter("cancelled"))
    k.spawn(getter("other"))

    async def producer():
        await k.sleep(20)
        q.put_nowait("x")

    k.spawn(producer())
    k.run()
    assert v.done and got == [("other", "x")]


@pytest.mark.parametrize("kw, err", [({"maxsize": -1}, ValueError), ({"maxsize": 1.5}, ValueError)])
def test_queue_rejects_bad_parameters(kw, err):
    with pytest.raises(err, match="maxsize"):
        Queue(Kernel(), **kw)
    with pytest.raises(TypeError, match="Kernel"):
        Queue(object())
