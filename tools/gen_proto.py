"""Generate the Python code of ``proto/web.proto`` with grpcio-tools (``make proto``).

Writes ``web_pb2.py`` (messages), ``web_pb2.pyi`` (their types) and ``web_pb2_grpc.py`` (the
service stub and servicer base) into ``<out>/tritontube/v1/``: the proto is compiled under the
virtual path ``tritontube/v1/web.proto`` (the path mirrors its package, ``tritontube.v1``), so
the generated imports are ``tritontube.v1.web_pb2`` and work inside the installed package.
``google/api/*.proto`` come from the googleapis-common-protos wheel, the well-known types from
grpcio-tools.

``tests/contract/test_proto_generated.py`` runs this into a temporary directory and fails when
the committed code differs (a stale ``make proto``).
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto" / "web.proto"
PACKAGE_PATH = "tritontube/v1"
GENERATED = ("web_pb2.py", "web_pb2.pyi", "web_pb2_grpc.py")


def _include_dirs() -> list[str]:
    import google.api  # the googleapis-common-protos wheel: google/api/*.proto beside its code

    google_root = Path(next(iter(google.api.__path__))).parent.parent
    well_known = resources.files("grpc_tools") / "_proto"
    return [str(google_root), str(well_known)]


def generate(out: Path) -> list[Path]:
    """Compile ``proto/web.proto`` into ``out`` (a source root); the files written."""
    from grpc_tools import protoc

    target = out / PACKAGE_PATH
    target.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"--proto_path={PACKAGE_PATH}={PROTO.parent}",
        *(f"--proto_path={d}" for d in _include_dirs()),
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"{PACKAGE_PATH}/{PROTO.name}",
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")
    return [target / name for name in GENERATED]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src", help="source root")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path.relative_to(args.out) if path.is_relative_to(args.out) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
