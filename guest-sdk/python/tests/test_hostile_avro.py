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


def quadratic_blocks(blocks):
    """Blocks of ``null`` items, each claiming one item per byte after its count (plus one),
    which a per-block check against the bytes left lets through: items grow as the square
    of the input."""
    parts, after = [], 0
    for _ in range(blocks):
        count = varint(after + 1)
        parts.append(count)
        after += len(count)
    return b"".join(reversed(parts)) + varint(0)


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

    def test_blocks_of_zero_size_items_cannot_claim_more_items_than_the_budget(self):
        # The outsider's reproduction: 5,000 blocks, each claiming one item per byte left
        # (10.8 KB); the old per-block check let it build 25 M items (2.6 s, 207 MB).
        data = quadratic_blocks(5000)
        self.assertLess(len(data), 11_000)
        empty = {"type": "record", "name": "E", "fields": []}
        for items in ("null", empty):
            with self.assertRaisesRegex(avro.AvroError, r"^array of \d+ items past the limit of \d+ items"):
                avro.decoder({"type": "array", "items": items})(data)
        # A single 5-byte block of 2^24 nulls, and 2^40 in 6 bytes.
        for count in (2**24, 2**40):
            self.refused({"type": "array", "items": "null"}, varint(count) + varint(0))

    def test_the_budget_spans_every_array_and_map_of_the_datum(self):
        # 64 arrays of 2^15 nulls each fit alone, together (2 M) they do not.
        nested = {"type": "array", "items": {"type": "array", "items": "null"}}
        inner = varint(2**15) + varint(0)
        ok = varint(16) + inner * 16 + varint(0)
        self.assertEqual([len(a) for a in avro.decoder(nested)(ok)], [2**15] * 16)
        with self.assertRaisesRegex(avro.AvroError, r"with its other arrays and maps"):
            avro.decoder(nested)(varint(64) + inner * 64 + varint(0))
        record = {
            "type": "record",
            "name": "Two",
            "fields": [
                {"name": "a", "type": {"type": "array", "items": "null"}},
                {"name": "m", "type": {"type": "map", "values": {"type": "array", "items": "null"}}},
            ],
        }
        half = varint(avro.ZERO_SIZE_ITEMS // 2 + 64) + varint(0)
        with self.assertRaisesRegex(avro.AvroError, r"^array of \d+ items .* with its other arrays and maps"):
            avro.decoder(record)(half + varint(1) + varint(1) + b"k" + half + varint(0))

    def test_real_arrays_of_zero_size_items_up_to_the_allowance_decode(self):
        # One block of a million nulls in 4 bytes: the old check refused it as
        # "longer than the datum", though a writer may encode it so.
        count = avro.ZERO_SIZE_ITEMS
        data = varint(count) + varint(0)
        self.assertEqual(len(avro.decoder({"type": "array", "items": "null"})(data)), count)
        self.refused({"type": "array", "items": "null"}, varint(count + len(data) + 1) + varint(0))

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
