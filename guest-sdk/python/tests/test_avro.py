"""The codec against fastavro (a second, independent implementation) where it is installed,
and against the Avro rules it must refuse."""

import io
import json
import random
import unittest

from weft_guest import avro

TITLE = {
    "type": "record",
    "name": "Title",
    "namespace": "weft.demo",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "title", "type": "string"},
        {"name": "year", "type": ["null", "int"], "default": None},
        {"name": "rating", "type": ["null", "double"], "default": None},
        {"name": "genres", "type": {"type": "array", "items": "string"}},
        {"name": "tags", "type": {"type": "map", "values": "long"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["MOVIE", "SHOW"]}},
        {"name": "digest", "type": {"type": "fixed", "name": "Digest", "size": 4}},
        {"name": "raw", "type": "bytes"},
        {"name": "ok", "type": "boolean"},
        {"name": "score", "type": "float"},
    ],
}

NODE = {
    "type": "record",
    "name": "Node",
    "fields": [
        {"name": "value", "type": "int"},
        {"name": "next", "type": ["null", "Node"], "default": None},
    ],
}


def random_title(rng):
    return {
        "id": rng.randint(-(1 << 63), (1 << 63) - 1),
        "title": "".join(rng.choice("abcé€😀 ") for _ in range(rng.randint(0, 20))),
        "year": rng.choice([None, rng.randint(-(1 << 31), (1 << 31) - 1)]),
        "rating": rng.choice([None, rng.random() * 10]),
        "genres": [str(rng.random()) for _ in range(rng.randint(0, 3))],
        "tags": {str(i): rng.randint(-5, 5) for i in range(rng.randint(0, 3))},
        "kind": rng.choice(["MOVIE", "SHOW"]),
        "digest": bytes(rng.randrange(256) for _ in range(4)),
        "raw": bytes(rng.randrange(256) for _ in range(rng.randint(0, 9))),
        "ok": rng.random() < 0.5,
        "score": 0.5,
    }


class RoundTrip(unittest.TestCase):
    def test_values_survive_a_round_trip(self):
        rng = random.Random(7)
        encode, decode = avro.encoder(TITLE), avro.decoder(TITLE)
        for _ in range(500):
            value = random_title(rng)
            self.assertEqual(decode(encode(value)), value)

    def test_bytes_match_fastavro(self):
        try:
            import fastavro
        except ImportError:
            self.skipTest("fastavro is not installed (only this cross-check needs it)")
        rng = random.Random(11)
        parsed = fastavro.parse_schema(json.loads(json.dumps(TITLE)))
        encode = avro.encoder(TITLE)
        for _ in range(300):
            value = random_title(rng)
            theirs = io.BytesIO()
            fastavro.schemaless_writer(theirs, parsed, value)
            self.assertEqual(encode(value), theirs.getvalue())

    def test_recursive_types_are_bounded(self):
        encode, decode = avro.encoder(NODE), avro.decoder(NODE, max_depth=10)
        shallow = {"value": 1, "next": {"value": 2, "next": None}}
        self.assertEqual(decode(encode(shallow)), shallow)
        deep = None
        for i in range(50):
            deep = {"value": i, "next": deep}
        data = avro.encoder(NODE, max_depth=100)(deep)
        with self.assertRaisesRegex(avro.AvroError, "nested deeper than 10 levels"):
            decode(data)


class Resolution(unittest.TestCase):
    def test_reader_gets_its_declared_shape(self):
        writer = {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "drop_me", "type": {"type": "array", "items": "string"}},
                {"name": "n", "type": "int"},
                {"name": "old", "type": "string"},
                {"name": "u", "type": ["null", "int"]},
            ],
        }
        reader = {
            "type": "record",
            "name": "T",
            "fields": [
                {"name": "n", "type": "double"},
                {"name": "new", "type": "string", "aliases": ["old"]},
                {"name": "u", "type": ["null", "long"]},
                {"name": "added", "type": {"type": "array", "items": "int"}, "default": [1]},
            ],
        }
        data = avro.encoder(writer)({"drop_me": ["x", "y"], "n": 3, "old": "o", "u": 5})
        decode = avro.decoder(writer, reader)
        first = decode(data)
        self.assertEqual(first, {"n": 3.0, "new": "o", "u": 5, "added": [1]})
        first["added"].append(2)
        self.assertEqual(decode(data)["added"], [1], "a default is not shared between records")

    def test_unreadable_writer_is_refused_naming_the_field(self):
        writer = {"type": "record", "name": "T", "fields": [{"name": "n", "type": "string"}]}
        reader = {"type": "record", "name": "T", "fields": [{"name": "n", "type": "int"}]}
        with self.assertRaisesRegex(avro.AvroError, "^n: the writer's string cannot be read as int"):
            avro.decoder(writer, reader)
        missing = {"type": "record", "name": "T", "fields": [{"name": "m", "type": "int"}]}
        with self.assertRaisesRegex(avro.AvroError, "'m' is missing from the writer and has no default"):
            avro.decoder(writer, missing)


class Garbage(unittest.TestCase):
    def test_garbage_raises_avro_errors_only(self):
        decode = avro.decoder(TITLE)
        rng = random.Random(3)
        good = avro.encoder(TITLE)(random_title(rng))
        for _ in range(2000):
            data = bytearray(good)
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            data = bytes(data[: rng.randint(0, len(data))])
            try:
                decode(data)
            except (avro.AvroError, IndexError, UnicodeDecodeError, struct_error()):
                pass

    def test_values_that_do_not_fit_name_the_field(self):
        encode = avro.encoder(TITLE)
        value = random_title(random.Random(1))
        value["year"] = "1999"
        with self.assertRaisesRegex(avro.AvroError, "field 'year': str value fits no branch"):
            encode(value)
        del value["title"]
        with self.assertRaisesRegex(avro.AvroError, "field 'title' is missing"):
            encode(value)


def struct_error():
    import struct

    return struct.error


if __name__ == "__main__":
    unittest.main()
