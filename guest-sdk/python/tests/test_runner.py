"""The Runner: what the component does between the host and a processor, without Wasm."""

import json
import unittest
from collections import namedtuple

from weft_guest import KEEP, ConfigError, Event, Param, Processor, Reject, Runner, avro

DECLARED = {
    "type": "record",
    "name": "Input",
    "fields": [{"name": "id", "type": "long"}, {"name": "text", "type": "string"}],
}
STREAM = {
    "type": "record",
    "name": "Input",
    "fields": [
        {"name": "text", "type": "string"},
        {"name": "extra", "type": "int"},
        {"name": "id", "type": "int"},
    ],
}


Ev = namedtuple("Ev", "key value headers timestamp")


class Upper(Processor):
    name = "upper"
    params = [Param("times", "How often.", default=1), Param("must", "Required.", required=True)]
    input_schema = DECLARED
    output_schema = DECLARED

    def configure(self, params, input_schema):
        self.times = params.int("times")

    def process(self, record, event):
        if record["text"] == "keep":
            return KEEP
        if record["text"] == "no":
            raise Reject("said no")
        if record["text"] == "bad":
            return {"id": record["id"], "text": 5}
        if record["text"] == "two":
            return [record, Event(record, key=b"k2")]
        return {"id": record["id"], "text": record["text"].upper() * self.times}


class RunnerTests(unittest.TestCase):
    def configured(self, pairs):
        runner = Runner(Upper)
        output, reads = runner.configure(pairs, json.dumps(STREAM))
        return runner, output, reads

    def test_records_arrive_as_declared_and_leave_as_the_output_schema(self):
        runner, output, reads = self.configured([("must", "x"), ("times", "2")])
        self.assertEqual(reads, ["id", "text"])
        write = avro.encoder(STREAM)
        read_out = avro.decoder(output)
        events = [
            Ev(b"k", write({"text": t, "extra": 9, "id": i}), [], 5)
            for i, t in enumerate(["ab", "keep", "no", "bad", "two"])
        ]
        outcomes = runner.process(events)
        self.assertEqual(outcomes[0][0], "emit")
        self.assertEqual(read_out(outcomes[0][1][0][1]), {"id": 0, "text": "ABAB"})
        # The stream's bytes are not the output schema's: KEEP writes the record again.
        self.assertEqual(read_out(outcomes[1][1][0][1]), {"id": 1, "text": "keep"})
        self.assertEqual(outcomes[2], ("reject", "said no"))
        self.assertEqual(outcomes[3][0], "reject")
        self.assertIn("field 'text': expected a str, got int", outcomes[3][1])
        self.assertEqual([e[0] for e in outcomes[4][1]], [b"k", b"k2"])

    def test_garbage_input_is_a_reject_not_a_crash(self):
        runner, _, _ = self.configured([("must", "x")])
        [outcome] = runner.process([Ev(None, b"\xff\xff\xff", [], None)])
        self.assertEqual(outcome[0], "reject")
        self.assertTrue(outcome[1].startswith("undecodable input"), outcome[1])

    def test_bad_parameters_name_the_parameter(self):
        with self.assertRaises(ConfigError) as missing:
            self.configured([])
        self.assertEqual(missing.exception.param, "must")
        with self.assertRaises(ConfigError) as bad:
            self.configured([("must", "x"), ("times", "2.5")])
        self.assertEqual(bad.exception.param, "times")
        self.assertIn("must be an integer", bad.exception.message)

    def test_an_unreadable_stream_fails_configure(self):
        stream = {"type": "record", "name": "Input", "fields": [{"name": "id", "type": "string"}]}
        with self.assertRaisesRegex(ConfigError, "cannot read the input as declared"):
            Runner(Upper).configure([("must", "x")], json.dumps(stream))

    def test_an_authors_exception_propagates_for_the_component_to_trap(self):
        class Broken(Upper):
            def process(self, record, event):
                raise KeyError("nope")

        runner = Runner(Broken)
        runner.configure([("must", "x")], json.dumps(DECLARED))
        data = avro.encoder(DECLARED)({"id": 1, "text": "a"})
        with self.assertRaises(KeyError):
            runner.process([Ev(None, data, [], None)])


class TypedRecords(unittest.TestCase):
    def test_dataclasses_in_and_out(self):
        from dataclasses import dataclass

        @dataclass
        class Item:
            id: int
            text: str

        class Typed(Processor):
            name = "typed"
            input_schema = DECLARED
            output_schema = DECLARED
            record_type = Item

            def process(self, record, event):
                assert isinstance(record, Item)
                return Item(record.id + 1, record.text * 2)

        runner = Runner(Typed)
        runner.configure([], json.dumps(STREAM))
        data = avro.encoder(STREAM)({"text": "a", "extra": 0, "id": 1})
        [(kind, [(_, value, _, _)])] = runner.process([Ev(None, data, [], None)])
        self.assertEqual(kind, "emit")
        self.assertEqual(avro.decoder(DECLARED)(value), {"id": 2, "text": "aa"})


if __name__ == "__main__":
    unittest.main()
