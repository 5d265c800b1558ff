#!/usr/bin/env python3
"""Decode TritonTube messages with nothing but fastavro and the published .avsc files.

    python examples/decode_with_avsc.py SCHEMA_DIR FILE...      # one raw message per file
    python examples/decode_with_avsc.py SCHEMA_DIR --hex HEX...

Each message is Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO
fingerprint (8 bytes, little endian), then the Avro binary body. Prints one JSON line each.
Deliberately imports nothing from the tritontube package.
"""

from __future__ import annotations

import io
import json
import struct
import sys
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form


def load_schemas(directory: Path) -> dict[int, dict]:
    by_fp = {}
    for path in sorted(directory.rglob("*.avsc")):
        # load_schema resolves named types from <full name>.avsc files in the same folder
        schema = load_schema(str(path), _write_hint=False)
        fp = int(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"), 16)
        by_fp.setdefault(fp, schema)
    return by_fp


def decode(data: bytes, schemas: dict[int, dict]) -> tuple[str, dict]:
    magic, fp = struct.unpack_from("<2sQ", data)
    if magic != b"\xc3\x01":
        raise ValueError("not Avro single-object encoding")
    schema = schemas[fp]
    return schema["name"], fastavro.schemaless_reader(io.BytesIO(data[10:]), schema)


def main(argv: list[str]) -> int:
    schemas = load_schemas(Path(argv[1]))
    if argv[2] == "--hex":
        messages = [bytes.fromhex(h) for h in argv[3:]]
    else:
        messages = [Path(p).read_bytes() for p in argv[2:]]
    for data in messages:
        name, value = decode(data, schemas)
        print(json.dumps({"record": name, "value": value}, default=str, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
