#!/usr/bin/env python3
"""make_wire.py - writes the wire-level (Avro, Confluent-framed) files of the bad-input corpus.

Run from this directory: python3 make_wire.py (the files are committed; this script
documents how each was made and regenerates them). It writes:
  - w*.bin: hand-built frames, each broken in one way (see MANIFEST for the reason
    `dashi run` must give);
  - c*.json.avro: the Avro form of every content-level c*.json file whose JSON is
    representable in the shipped schemas (types right, semantics wrong), encoded
    here without validation, because dashi's own encoder refuses invalid events.
Schema ids are the shipped defaults: event type index + 1 (AccountRegistered = 1).
"""
import datetime
import glob
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "..", "schemas")
TYPES = ["AccountRegistered", "LinkVisited", "RealNameVerified", "IdentityChanged", "AmbassadorEnrolled",
         "AccountFlagged", "CustomerBound", "CampaignEnrolled", "OrderPaid", "OrderRefunded", "RiskAction",
         "SamePersonDecision", "CommissionEvent", "CampaignEvent", "TierAssigned", "FraudAlert"]


def zz(n):
    """Avro long: zig-zag varint."""
    u = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def s(v):
    b = v if isinstance(v, bytes) else v.encode()
    return zz(len(b)) + b


def frame(schema_id, body, magic=0):
    return bytes([magic]) + struct.pack(">i", schema_id) + body


def ms(text):
    t = datetime.datetime.fromisoformat(text)
    if t.tzinfo is None:  # no offset: not an instant, not representable
        raise ValueError(text)
    return int(t.timestamp() * 1000)


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def sid(t):
    return TYPES.index(t) + 1


def encode(schema, value, names):
    """Generic Avro binary encoding of a JSON value (no semantic checks)."""
    if isinstance(schema, str):
        if schema in names:
            return encode(names[schema], value, names)
        if schema == "string":
            return s(value)
        if schema == "long" or schema == "int":
            return zz(value)
        if schema == "boolean":
            return b"\x01" if value else b"\x00"
        if schema == "null":
            return b""
        raise ValueError(schema)
    if isinstance(schema, list):  # ["null", T]
        if value is None:
            return zz(schema.index("null"))
        k = [i for i, b in enumerate(schema) if b != "null"][0]
        return zz(k) + encode(schema[k], value, names)
    t = schema["type"]
    if t == "record":
        names[schema["name"]] = schema
        names["dashi.v1." + schema["name"]] = schema
        out = b""
        for f in schema["fields"]:
            v = value.get(f["name"], f.get("default"))
            out += encode(f["type"], v, names)
        return out
    if t == "enum":
        names[schema["name"]] = schema
        names["dashi.v1." + schema["name"]] = schema
        return zz(schema["symbols"].index(value))
    if t == "array":
        if not value:
            return zz(0)
        return zz(len(value)) + b"".join(encode(schema["items"], v, names) for v in value) + zz(0)
    if t == "long" and schema.get("logicalType") == "timestamp-millis":
        return zz(ms(value) if isinstance(value, str) else value)
    return encode(t, value, names)


def schema_of(t):
    with open(os.path.join(SCHEMAS, t + ".avsc")) as f:
        return json.load(f)


def avro(ev):
    t = ev["type"]
    return frame(sid(t), encode(schema_of(t), ev, {}))


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


T = "2022-06-20T10:00:00+08:00"
AE = lambda eid="bi-w", t=T, uid="bi-w-uid": s(eid) + zz(ms(t) if isinstance(t, str) else t) + s(uid)
ae_ok = frame(sid("AmbassadorEnrolled"), AE())
order = {"type": "OrderPaid", "event_id": "bi-w-o", "occurred_at": T, "order_id": "bi-w-o", "uid": "bi-w-uid",
         "order_type": "NEW", "billing": "PREPAID",
         "items": [{"item_id": "i1", "product_code": "ecs.c6", "category": "ecs", "list_amount": 1000,
                    "discount_amount": 0, "paid_amount": 1000}]}
order_ok = avro(order)

write("w01-empty.bin", b"")
write("w02-short-frame.bin", b"\x00\x00\x00")
write("w03-wrong-magic.bin", frame(sid("AmbassadorEnrolled"), AE(), magic=1))
write("w04-unknown-schema-id.bin", frame(999, AE()))
write("w05-truncated-body.bin", order_ok[: len(order_ok) // 2])
write("w06-trailing-bytes.bin", ae_ok + b"\x00junk")
write("w07-huge-string-length.bin", frame(sid("AmbassadorEnrolled"), zz(1 << 40) + b"bi-w"))
write("w08-negative-string-length.bin", frame(sid("AmbassadorEnrolled"), zz(-7) + b"bi-w"))
head = s("bi-w-o9") + zz(ms(T)) + s("bi-w-o9") + s("bi-w-uid") + zz(0) + zz(0) + zz(0) + zz(0)
write("w09-huge-array-count.bin", frame(sid("OrderPaid"), head + zz(1 << 30)))
item = s("i") + s("p") + s("ecs") + zz(0) + zz(0) + zz(0)
# the claimed count is refused before any item is read: two items are enough
write("w10-array-over-limit.bin", frame(sid("OrderPaid"), head + zz(5000) + item * 2))
write("w11-enum-index.bin", frame(sid("AccountFlagged"), AE("bi-w11") + zz(7) + b"\x01"))
write("w12-union-branch.bin",
      frame(sid("LinkVisited"), AE("bi-w12") + s("bi-amb") + s("bi-link") + zz(5) + b"\x01"))
write("w13-bad-boolean.bin", frame(sid("AccountFlagged"), AE("bi-w13") + zz(1) + b"\x02"))
write("w14-varint-overflow.bin", frame(sid("AmbassadorEnrolled"), s("bi-w14") + b"\xff" * 11 + s("u")))
write("w15-invalid-utf8.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w15", uid=b"bi-\xc3\x28-uid")))
write("w16-nul-in-string.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w16", uid=b"bi-\x00-uid")))
write("w17-json-on-avro-topic.bin",
      b'{"type":"AmbassadorEnrolled","event_id":"bi-w17","occurred_at":"2022-06-20T10:00:00+08:00","uid":"bi-w17"}')
write("w18-output-type.bin",
      frame(sid("TierAssigned"), s("bi-amb") + s("2022-06") + zz(0) + zz(0) + s("2022-06-01")))
write("w19-oversized-message.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w19", uid="u" * 9000)))
write("w20-instant-out-of-range.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w20", t=1 << 62)))
write("w21-wrong-topic.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w21")))
write("w22-int64-min-amount.bin",
      frame(sid("OrderRefunded"), s("bi-w22") + zz(ms(T)) + s("bi-order-1") + s("bi-cust") + zz(0) + zz(-(1 << 63)) + zz(0)))
write("w23-far-future.bin", frame(sid("AmbassadorEnrolled"), AE("bi-w23", t="2029-12-01T00:00:00+08:00")))

for path in sorted(glob.glob(os.path.join(HERE, "c*.json"))):
    with open(path, "rb") as f:
        text = f.read()
    try:
        ev = json.loads(text, object_pairs_hook=no_duplicates)
        data = avro(ev)
    except Exception:  # not representable in Avro: published as raw JSON bytes
        if os.path.exists(path + ".avro"):
            os.remove(path + ".avro")
        continue
    write(os.path.basename(path) + ".avro", data)

# seeds of the codec fuzzer: every input type of tests/data/events/all-types.ndjson, valid
seeds = os.path.join(HERE, "..", "..", "..", "fuzz", "corpus", "fuzz_codec")
os.makedirs(seeds, exist_ok=True)
with open(os.path.join(HERE, "..", "events", "all-types.ndjson")) as f:
    for n, line in enumerate(f):
        if line.strip():
            ev = json.loads(line)
            if TYPES.index(ev["type"]) < 11:
                with open(os.path.join(seeds, "valid-%02d-%s.bin" % (n, ev["type"])), "wb") as out:
                    out.write(avro(ev))
