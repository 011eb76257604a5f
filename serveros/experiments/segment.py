"""The Ethernet segment experiment: N stations send frames to one sink over the shared
10 Mbit/s CSMA/CD segment; reports goodput, collisions and utilization against the framing
arithmetic, and writes every frame to a pcapng capture.

It exercises the foundation end to end (kernel, segment, pcap) and is what ``make run`` runs
until the paper's experiment exists.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sim.kernel import Kernel
from sim.media.ethernet import (ExcessiveCollisions, HEADER_LEN, MAX_PAYLOAD, MIN_PAYLOAD,
                                Segment, build_frame, wire_bits)
from sim.media.pcap import PcapNgWriter
from sim.time import MS, S

#: The most senders :class:`SegmentExperiment` runs (a 10BASE5 segment's 100-tap limit leaves
#: room for them; the limit keeps a typo from starting a run that never ends).
MAX_STATIONS = 64


@dataclass(frozen=True)
class SegmentExperiment:
    """Configuration: ``stations`` senders, each sending ``frames`` frames of ``payload`` bytes
    (after the 14-byte header) back to back to one sink."""

    stations: int = 4
    frames: int = 500
    payload: int = 1500
    seed: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.stations <= MAX_STATIONS:
            raise ValueError(f"stations must be 1..{MAX_STATIONS}, not {self.stations!r}")
        if self.frames < 1:
            raise ValueError(f"frames must be >= 1, not {self.frames!r}")
        if not MIN_PAYLOAD <= self.payload <= MAX_PAYLOAD:
            raise ValueError(f"payload must be {MIN_PAYLOAD}..{MAX_PAYLOAD} bytes, not {self.payload!r}")


@dataclass
class SegmentResult:
    config: SegmentExperiment
    sim_seconds: float
    frames_delivered: int
    frames_abandoned: int
    goodput_bits_per_s: float
    ideal_goodput_bits_per_s: float
    utilization: float
    collisions: int
    jams: int
    deferrals: int
    per_station: dict[str, dict] = field(default_factory=dict)
    events: int = 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def run_segment(exp: SegmentExperiment, pcap_path: str | Path | None = None) -> SegmentResult:
    """Run the experiment to completion on the own kernel (deterministic for a seed)."""
    k = Kernel()
    writer = PcapNgWriter(pcap_path) if pcap_path else None
    try:
        seg = Segment(k, seed=exp.seed, pcap=writer)
        sink = seg.attach("sink", on_frame=lambda rx: None)
        sink_mac = "02:00:00:00:00:ff"
        abandoned = 0

        async def sender(i: int) -> None:
            nonlocal abandoned
            st = seg.attach(f"st{i}")
            src = f"02:00:00:00:00:{i:02x}"
            for n in range(exp.frames):
                body = n.to_bytes(4, "big") * (exp.payload // 4) + bytes(exp.payload % 4)
                try:
                    await st.send(build_frame(sink_mac, src, 0x88B5, body))
                except ExcessiveCollisions:
                    abandoned += 1          # 802.3 gives the frame up; so does a driver's RTRY
        for i in range(exp.stations):
            k.spawn(sender(i), name=f"st{i}")
        k.run()
        k.run(until=k.now + 1 * MS)          # let the last frame reach the sink
    finally:
        if writer is not None:
            writer.close()
    frame_len = HEADER_LEN + exp.payload + 4
    payload_bits = exp.payload * 8
    ideal = payload_bits / ((wire_bits(frame_len) + seg.ifg_bits) * seg.bit_time_ps / S)
    delivered = sink.stats.frames_received
    busy_end = k.now - 1 * MS
    return SegmentResult(
        config=exp,
        sim_seconds=busy_end / S,
        frames_delivered=delivered,
        frames_abandoned=abandoned,
        goodput_bits_per_s=delivered * payload_bits / (busy_end / S),
        ideal_goodput_bits_per_s=ideal,
        utilization=seg.stats.busy_ps / busy_end,
        collisions=seg.stats.collisions,
        jams=seg.stats.jams,
        deferrals=seg.stats.deferrals,
        per_station={name: asdict(st.stats) for name, st in seg.stations.items()},
        events=k.events,
    )
