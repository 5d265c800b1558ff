#!/usr/bin/env python3
"""Decode TritonTube messages with nothing but fastavro and the published .avsc files.

    python examples/decode_with_avsc.py SCHEMA_DIR FILE...      # one raw message per file
    python examples/decode_with_avsc.py SCHEMA_DIR --hex HEX...

Needs: Python 3.11+, fastavro (pip install fastavro) and the .avsc files (src/tritontube/schemas,
history/ included). Deliberately imports nothing from the tritontube package.

Each message is Avro single-object encoding: C3 01, the writer schema's CRC-64-AVRO fingerprint
(8 bytes, little endian, exactly as the Avro specification writes them), then the Avro binary
body. Messages TritonTube wrote before issue 21 carry those 8 bytes reversed: when the bytes as
written name no schema, they are looked up reversed (no TritonTube schema's reversed fingerprint
is another's, so the two cannot be confused). Prints one JSON line per message ("legacy": true
for the old byte order, or "error"), then a count on stderr; exit status 1 if any failed.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, load_schema, to_parsing_canonical_form

MAGIC = b"\xc3\x01"
HEADER = 10  # C3 01 + 8 fingerprint bytes


def load_schemas(directory: Path) -> dict[bytes, dict]:
    """Every schema under ``directory`` by its fingerprint bytes as a message carries them."""
    by_fp = {}
    for path in sorted(directory.rglob("*.avsc")):
        # load_schema resolves named types from <full name>.avsc files in the same folder
        schema = load_schema(str(path), _write_hint=False)
        canonical = to_parsing_canonical_form(schema)
        # fastavro's hex string lists the fingerprint's bytes little-endian: as on the wire
        by_fp.setdefault(bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")), schema)
    return by_fp


def decode(data: bytes, schemas: dict[bytes, dict]) -> tuple[str, dict, bool]:
    """The record's full name, its value, and whether the header was in the legacy order."""
    if len(data) < HEADER or data[:2] != MAGIC:
        raise ValueError("not Avro single-object encoding")
    fp = data[2:HEADER]
    legacy = fp not in schemas
    schema = schemas.get(fp[::-1] if legacy else fp)
    if schema is None:
        raise ValueError(f"no .avsc has the fingerprint {fp.hex()} (either byte order)")
    return schema["name"], fastavro.schemaless_reader(io.BytesIO(data[HEADER:]), schema), legacy


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    schemas = load_schemas(Path(argv[1]))
    if argv[2] == "--hex":
        messages = [(h, bytes.fromhex(h)) for h in argv[3:]]
    else:
        messages = [(p, Path(p).read_bytes()) for p in argv[2:]]
    counts = {"spec": 0, "legacy": 0, "failed": 0}
    for label, data in messages:
        try:
            name, value, legacy = decode(data, schemas)
        except (ValueError, TypeError, EOFError, IndexError, UnicodeDecodeError) as exc:
            counts["failed"] += 1
            print(json.dumps({"message": label, "error": str(exc)}))
            continue
        counts["legacy" if legacy else "spec"] += 1
        line = {"record": name, "value": value, "legacy": legacy}
        print(json.dumps(line, default=str, sort_keys=True))
    print(
        f"decoded {counts['spec']} (spec byte order), {counts['legacy']} (legacy byte order), "
        f"failed {counts['failed']}",
        file=sys.stderr,
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
