"""The decoder given bytes an attacker chose: truncated, lying about lengths, varints that do
not end, unions and recursion past their bounds. Each must fail with an error the Runner
turns into a reject (its decode ``except``), never hang, recurse without end or allocate
what a length claims."""

import struct
import unittest

from weft_guest import avro

# What the Runner catches around decode (weft_guest/processor.py): anything else traps.
UNDECODABLE = (avro.AvroError, IndexError, UnicodeDecodeError, struct.error, TypeError)

RECORD = {
    "type": "record",
    "name": "R",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": "string"},
        {"name": "score", "type": "double"},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
    ],
}

LIST = {
    "type": "record",
    "name": "Node",
    "fields": [{"name": "next", "type": ["null", "Node"]}],
}


def varint(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7F
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def valid_record():
    return varint(7) + varint(3) + b"abc" + struct.pack("<d", 1.5) + varint(1) + varint(1) + b"x" + varint(0)


class HostileBytes(unittest.TestCase):
    def refused(self, schema, data):
        decode = avro.decoder(schema)
        with self.assertRaises(UNDECODABLE, msg=repr(data[:40])):
            decode(data)

    def test_every_truncation_of_a_valid_record_is_refused(self):
        data = valid_record()
        self.assertEqual(avro.decoder(RECORD)(data)["tags"], ["x"])
        for end in range(len(data)):
            self.refused(RECORD, data[:end])

    def test_lengths_past_the_datum_are_refused_without_allocating_them(self):
        for n in (2**31, 2**62, -1, -(2**62)):
            self.refused("string", varint(n) + b"abc")
            self.refused("bytes", varint(n) + b"abc")

    def test_a_block_count_past_the_datum_is_refused(self):
        self.refused({"type": "array", "items": "long"}, varint(2**40) + varint(1))
        self.refused({"type": "map", "values": "long"}, varint(2**40) + varint(1))
        self.refused({"type": "array", "items": "long"}, varint(-(2**40)) + varint(8) + varint(1))

    def test_a_varint_that_does_not_end_is_refused(self):
        self.refused("long", b"\xff" * 1000)
        self.refused("long", b"\xff" * 5)

    def test_a_union_branch_out_of_range_is_refused(self):
        for branch in (2, -1, 2**40):
            self.refused(["null", "string"], varint(branch))

    def test_invalid_utf8_and_short_floats_are_refused(self):
        self.refused("string", varint(2) + b"\xff\xfe")
        self.refused("double", b"\x00\x00\x00")
        self.refused("float", b"\x00")

    def test_recursion_deeper_than_the_bound_is_refused_not_a_recursion_error(self):
        deep = varint(1) * 100_000 + varint(0)
        self.refused(LIST, deep)
        shallow = varint(1) * 10 + varint(0)
        value = avro.decoder(LIST)(shallow)
        depth = 0
        while value is not None:
            value, depth = value["next"], depth + 1
        self.assertEqual(depth, 11)

    def test_trailing_bytes_are_refused(self):
        self.refused(RECORD, valid_record() + b"\x00")

    def test_random_garbage_never_escapes_the_runner_except(self):
        import random

        rng = random.Random(7)
        decode = avro.decoder(RECORD)
        for _ in range(2000):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            try:
                decode(data)
            except UNDECODABLE:
                pass


if __name__ == "__main__":
    unittest.main()
