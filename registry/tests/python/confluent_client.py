"""Drives a weft registry with Confluent's own Python client (confluent-kafka).

Run by registry/tests/python_client.rs against the real binary:
    python3 confluent_client.py URL TOKEN
Exits 0 when every step worked; otherwise prints the failing step and exits non-zero.
No broker is needed: serializers run with a SerializationContext.
"""

import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext


def record(fields, name="com.acme.Order", namespace=None):
    schema = {"type": "record", "name": name, "fields": fields}
    if namespace is not None:
        schema["namespace"] = namespace
    return json.dumps(schema)


V1 = record([{"name": "id", "type": "long"}])
V2 = record([{"name": "id", "type": "long"}, {"name": "note", "type": ["null", "string"], "default": None}])
# Not BACKWARD: a new field without a default.
BREAKING = record([{"name": "id", "type": "long"}, {"name": "qty", "type": "int"}])


def check(what, condition, detail=""):
    if not condition:
        print(f"FAILED: {what} {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


def main():
    url, token = sys.argv[1], sys.argv[2]
    client = SchemaRegistryClient(
        {
            "url": url,
            "bearer.auth.credentials.source": "STATIC_TOKEN",
            "bearer.auth.token": token,
            # Required by the client for static tokens (Confluent Cloud headers); ignored here.
            "bearer.auth.logical.cluster": "lsrc-weft",
            "bearer.auth.identity.pool.id": "pool-weft",
        }
    )
    subject = "orders-value"

    answer = client.set_compatibility(subject, "BACKWARD")
    # Some client versions answer the response body, others the level alone.
    level = answer.get("compatibility") if isinstance(answer, dict) else answer
    check("set_compatibility", level == "BACKWARD", answer)
    check("get_compatibility", client.get_compatibility(subject) == "BACKWARD")

    id1 = client.register_schema(subject, Schema(V1, "AVRO"))
    check("register_schema answers an id", isinstance(id1, int) and id1 > 0, id1)
    # The same record written with a namespace instead of a dotted name is the same schema.
    same = record([{"name": "id", "type": "long"}], name="Order", namespace="com.acme")
    check("register_schema of the same schema, other spelling", client.register_schema(subject, Schema(same, "AVRO")) == id1)

    found = client.lookup_schema(subject, Schema(V1, "AVRO"))
    check("lookup_schema", found.schema_id == id1 and found.version == 1, found)
    found = client.lookup_schema(subject, Schema(same, "AVRO"), normalize_schemas=True)
    check("lookup_schema normalize=True", found.schema_id == id1, found)

    check("test_compatibility (compatible)", client.test_compatibility(subject, Schema(V2, "AVRO")) is True)
    check("test_compatibility (incompatible)", client.test_compatibility(subject, Schema(BREAKING, "AVRO")) is False)
    check(
        "test_compatibility verbose",
        client.test_compatibility(subject, Schema(BREAKING, "AVRO"), verbose=True) is False,
    )

    id2 = client.register_schema(subject, Schema(V2, "AVRO"), normalize_schemas=True)
    check("register_schema normalize=True", id2 != id1, id2)
    latest = client.get_latest_version(subject)
    check("get_latest_version", latest.version == 2 and latest.schema_id == id2, latest)
    check("get_version 1", client.get_version(subject, 1).schema_id == id1)
    check("get_schema by id", json.loads(client.get_schema(id1).schema_str)["name"] in ("com.acme.Order", "Order"))
    check("get_subjects", subject in client.get_subjects())
    check("get_versions", client.get_versions(subject) == [1, 2])

    ctx = SerializationContext("orders", MessageField.VALUE)
    # auto.register.schemas=False: the serializer looks its schema up (normalize=False, deleted=False).
    lookup_only = AvroSerializer(client, V2, conf={"auto.register.schemas": False})
    payload = lookup_only({"id": 7, "note": "hello"}, ctx)
    check("AvroSerializer(auto.register.schemas=False) frames with the looked-up id",
          payload[0] == 0 and int.from_bytes(payload[1:5], "big") == id2, payload[:5])

    other = "payments-value"
    v3 = record([{"name": "amount", "type": "double"}], name="com.acme.Payment")
    registering = AvroSerializer(client, v3, conf={"auto.register.schemas": True})
    payment = registering({"amount": 9.5}, SerializationContext("payments", MessageField.VALUE))
    registered = client.get_latest_version(other)
    check("AvroSerializer(auto.register.schemas=True) registers", int.from_bytes(payment[1:5], "big") == registered.schema_id)

    deserializer = AvroDeserializer(client)
    check("AvroDeserializer round trip", deserializer(payload, ctx) == {"id": 7, "note": "hello"})
    check("AvroDeserializer round trip (auto-registered)",
          deserializer(payment, SerializationContext("payments", MessageField.VALUE)) == {"amount": 9.5})

    check("delete_version", client.delete_version(other, registered.version) == registered.version)
    check("delete_subject permanent", client.delete_subject(other, permanent=True) == [registered.version])
    # weft's PIPELINES level (BACKWARD plus the pipelines guard) through the same client calls.
    guarded = "guarded-value"
    client.set_compatibility(guarded, "PIPELINES")
    check("set_compatibility PIPELINES", client.get_compatibility(guarded) == "PIPELINES")
    client.register_schema(guarded, Schema(V1, "AVRO"))
    check("test_compatibility under PIPELINES", client.test_compatibility(guarded, Schema(V2, "AVRO")) is True)
    check("test_compatibility pipelines (incompatible)",
          client.test_compatibility(guarded, Schema(BREAKING, "AVRO"), verbose=True) is False)
    try:
        client.register_schema(guarded, Schema(BREAKING, "AVRO"))
        check("register_schema refused under PIPELINES", False, "it was registered")
    except SchemaRegistryError as e:
        check("register_schema refused under PIPELINES", e.http_status_code == 409 and e.error_code == 409, e)
    print("all confluent-kafka client steps passed")


if __name__ == "__main__":
    main()
