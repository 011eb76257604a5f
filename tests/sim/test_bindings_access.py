"""sim.bindings.access: the byte/word conversions a device binding uses with mem_read/mem_write."""
from sim.bindings.access import bytes_of, words_of


def test_words_of_is_little_endian_and_pads_the_last_word():
    assert words_of(b"\x01\x02\x03\x04\x05") == [0x04030201, 0x00000005]
    assert words_of(b"") == []


def test_bytes_of_inverts_words_of():
    data = bytes(range(12))
    assert bytes_of(words_of(data)) == data
    assert bytes_of([0xDEADBEEF]) == b"\xef\xbe\xad\xde"
