"""The ``tritontube`` command: the composition root.

``main()`` reads ``Settings()`` once and passes it down; no other module reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from tritontube.settings import Settings

log = logging.getLogger("tritontube")


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from tritontube.agents.app import create_worker_app
    from tritontube.deps import build_deps

    deps = build_deps(settings)
    try:
        worker_app = create_worker_app(settings, deps)
        worker = Worker(
            worker_app.app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False
        )
        worker.execute_from_commandline()
    finally:
        deps.close()
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from tritontube.deps import build_deps
    from tritontube.http.app import create_http_app

    app = create_http_app(settings, build_deps(settings))
    web.run_app(app, host=settings.http.host, port=settings.http.port, print=None, access_log=None)
    return 0


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.devstack.stack import run_dev

    # The embedded broker always needs its compatibility fixes.
    kafka = settings.kafka.model_copy(update={"embedded_broker_compat": True})
    return run_dev(settings.model_copy(update={"kafka": kafka}))


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.streams.admin import ensure_topics

    created = asyncio.run(ensure_topics(settings.kafka))
    print("created:", ", ".join(created) if created else "nothing (all exist)")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.http.auth import mint_token

    print(mint_token(settings.auth, args.user, ttl_seconds=args.ttl))
    return 0


def cmd_settings(settings: Settings, args: argparse.Namespace) -> int:
    """Print every setting: environment variable, current value (secrets hidden), description."""
    from pydantic import BaseModel, SecretStr

    def walk(model: BaseModel, prefix: str) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            env = f"{prefix}{name.upper()}"
            if isinstance(value, BaseModel):
                walk(value, f"{env}__")
                continue
            shown = "********" if isinstance(value, SecretStr) else value
            print(f"{env}={shown}\n    {field.description}")

    walk(settings, "TRITONTUBE_")
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.replay.cli import cmd_replay as run

    return run(settings, args)


def cmd_archive(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.replay.cli import cmd_archive as run

    return run(settings, args)


def cmd_schemas(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.streams import compat_check

    if args.schemas_command == "doc":
        print(compat_check.render_topics_doc(), end="")
        return 0
    problems = compat_check.check()
    for problem in problems:
        print(problem)
    versions = ", ".join(compat_check.history_versions()) or "none"
    print(f"{len(problems)} incompatibilities (history versions checked: {versions})")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tritontube", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start the whole embedded stack on loopback").set_defaults(
        func=cmd_dev
    )
    sub.add_parser("worker", help="run a Faust worker").set_defaults(func=cmd_worker)
    sub.add_parser("api", help="run the HTTP API and SPA").set_defaults(func=cmd_api)
    sub.add_parser("settings", help="list every setting and its value").set_defaults(
        func=cmd_settings
    )
    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True)
    topics_sub.add_parser("create", help="create every catalogue topic").set_defaults(
        func=cmd_topics
    )
    token = sub.add_parser("token", help="bearer tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="mint a signed token for a user")
    create.add_argument("--user", required=True, help="user id the token names")
    create.add_argument("--ttl", type=int, default=None, help="lifetime in seconds")
    create.set_defaults(func=cmd_token)
    from tritontube.replay.cli import add_archive_parser, add_replay_parser

    add_replay_parser(sub).set_defaults(func=cmd_replay)
    add_archive_parser(sub).set_defaults(func=cmd_archive)
    schemas = sub.add_parser("schemas", help="the Avro schemas as a contract")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    schemas_sub.add_parser(
        "check", help="backward-transitive compatibility with schemas/history"
    ).set_defaults(func=cmd_schemas)
    schemas_sub.add_parser("doc", help="print docs/topics.md").set_defaults(func=cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tritontube.devstack.seaweedfs import with_embedded_store_keys

    args = build_parser().parse_args(argv)
    # Without S3 keys of its own, a command uses those `make dev` generated for its store.
    settings = with_embedded_store_keys(Settings())
    _configure_logging(settings)
    return int(args.func(settings, args))


if __name__ == "__main__":
    sys.exit(main())
