"""ASHs: the verifier's refusals, run-time sandboxing and the echo handler, on a plain
bytearray 'memory' whose owner holds [0x1000, 0x2000)."""
import pytest

from sim.media.ethernet import build_frame
from sw.exokernel.ash import (MAX_INSTRUCTIONS, Ash, AshRefused, echo_program, verify)

LO, HI = 0x1000, 0x2000


def owns(addr, n):
    return LO <= addr and addr + max(n, 1) <= HI


class Mem:
    def __init__(self):
        self.data = bytearray(0x3000)
        self.data[0x2000:0x3000] = b"\xee" * 0x1000          # someone else's bytes
        self.writes = 0

    def read(self, addr, n):
        assert owns(addr, n), "the ASH read unchecked memory"
        return bytes(self.data[addr:addr + n])

    def write(self, addr, data):
        assert owns(addr, len(data)), "the ASH wrote unchecked memory"
        self.writes += 1
        self.data[addr:addr + len(data)] = data


def ash(prog, mem=None):
    mem = mem or Mem()
    return Ash(prog, "env", owns, mem.read, mem.write), mem


@pytest.mark.parametrize("prog, msg", [
    ([("li", 1, 0), ("beq", 0, 0, 0)], r"instruction 1 .* branches backwards \(to 0\): a loop"),
    ([("bne", 1, 0, 0)], "branches backwards"),                      # to itself
    ([("beq", 0, 0, 5)], "branches past the end"),
    ([("stm", 1, 4, 0, 0x2000)], r"writes address 0x2000, outside its owner's memory"),
    ([("ldm", 1, 4, 0, 0xffc)], r"reads address 0xffc, outside"),
    ([("ldm", 1, 4, 0, 0x1ffe)], "outside"),                         # straddles the end
    ([("li", 8, 1)], "register must be r0..r7, not 8"),
    ([("add", 1, 2, -1)], "must be r0..r7, not -1"),
    ([("li", 0, 1)], "r0 is read-only"),
    ([("ld", 1, 3, 0, 0)], "size must be 1, 2 or 4, not 3"),
    ([("jmp", 0)], "unknown opcode 'jmp'"),
    ([("li", 1)], "li takes 2 operands, not 1"),
    ([("li", 1, "x")], "immediate must be an integer"),
    ([()], "has no opcode"),
    ([], "at least one instruction"),
    ([("accept",)] * (MAX_INSTRUCTIONS + 1), f"at most {MAX_INSTRUCTIONS} instructions"),
])
def test_verifier_refuses_naming_the_instruction(prog, msg):
    with pytest.raises(AshRefused, match=msg):
        verify(prog, owns)


def test_verifier_accepts_forward_branches_and_owned_constants():
    prog = verify([("ldm", 1, 4, 0, 0x1000), ("beq", 1, 0, 3), ("stm", 1, 4, 0, 0x1ffc),
                   ("consume",)], owns)
    assert len(prog) == 4 and isinstance(prog, tuple)


def test_alu_branches_and_message_loads():
    msg = bytes(range(64))
    a, mem = ash([
        ("ld", 1, 4, 0, 0),                 # 0x00010203
        ("li", 2, 8), ("shr", 3, 1, 2),     # 0x000102
        ("addi", 4, 3, 1),                  # 0x000103
        ("li", 5, 0x103),
        ("bne", 4, 5, 8),                   # not taken
        ("stm", 4, 2, 0, 0x1000),
        ("consume",),
        ("accept",),                        # 8: skipped
    ])
    out = a.run(msg)
    assert out.consumed and out.aborted is None and out.instructions == 8
    assert mem.data[0x1000:0x1002] == b"\x01\x03" and out.sandbox_checks == 0
    b, _ = ash([("li", 1, 1), ("blt", 0, 1, 3), ("consume",), ("accept",)])
    out = b.run(msg)
    assert not out.consumed and out.instructions == 3      # branch taken to accept
    c, _ = ash([("li", 1, 1)])                              # falls off: accept
    assert not c.run(msg).consumed


def test_computed_out_of_bounds_store_aborts_without_touching_memory():
    a, mem = ash([("li", 1, 0x1000), ("li", 2, 7), ("stm", 2, 4, 1, 0),      # fine
                  ("li", 1, 0x1ffe), ("stm", 2, 4, 1, 0x1000),               # 0x2ffe: not ours
                  ("consume",)])
    before = bytes(mem.data)
    out = a.run(bytes(64))
    assert out.aborted and "access to 0x2ffe+4 is outside its owner's memory" in out.aborted
    assert not out.consumed and out.replies == [] and out.sandbox_checks == 2
    assert out.instructions == 5
    assert mem.writes == 1 and bytes(mem.data[0x2000:]) == before[0x2000:]
    assert mem.data[0x1000:0x1004] == b"\0\0\0\x07"


@pytest.mark.parametrize("prog, why", [
    ([("li", 1, 0x0fff), ("ldm", 2, 1, 1, 0)], "access to 0xfff+1"),
    ([("li", 1, 100), ("copy", 1, 0, 1)], "access to 0x64"),
    ([("li", 1, 0x1000), ("li", 2, 100), ("copy", 1, 0, 2)], "copy of message bytes 0+100 past"),
    ([("ld", 1, 4, 0, 62)], "load of message bytes 62+4 past its end"),
    ([("li", 1, 0x1000), ("li", 2, 5), ("reply", 1, 2)], "a reply of 5 bytes is not a frame"),
    ([("li", 1, 0x1ff0), ("li", 2, 60), ("reply", 1, 2)], "access to 0x1ff0+60"),
])
def test_runtime_checks_abort_cleanly(prog, why):
    a, mem = ash(prog + [("consume",)])
    before = bytes(mem.data)
    out = a.run(bytes(64))
    assert out.aborted and why in out.aborted
    assert bytes(mem.data) == before and not out.consumed and out.replies == []


def test_echo_program_swaps_addresses_and_ports_and_replies():
    ip = bytes([0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0xAB, 0xCD, 10, 0, 0, 2, 10, 0, 0, 1])
    udp = (7000).to_bytes(2, "big") + (7).to_bytes(2, "big") + (13).to_bytes(2, "big") + b"\x12\x34"
    frame = build_frame("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800, ip + udp + b"ping!")
    a, mem = ash(echo_program(0x1800))
    out = a.run(frame)
    assert out.aborted is None and out.consumed and len(out.replies) == 1
    want_ip = ip[:12] + ip[16:20] + ip[12:16]
    want_udp = udp[2:4] + udp[0:2] + udp[4:]
    want = build_frame("02:00:00:00:00:02", "02:00:00:00:00:01", 0x0800,
                       want_ip + want_udp + b"ping!")[:-4]
    assert out.replies[0] == want
    assert out.copied == len(frame) - 4 and out.instructions == len(echo_program(0))
    assert out.sandbox_checks == 1 + 8 + 1          # copy, eight computed stores, reply
    with pytest.raises(ValueError, match="buffer must be a non-negative address"):
        echo_program(-4)
