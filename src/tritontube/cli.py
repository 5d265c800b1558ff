"""The ``tritontube`` command: the composition root.

``main()`` reads ``Settings()`` once and passes it down; no other module reads the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

from tritontube.settings import Settings

log = logging.getLogger("tritontube")


def _configure_logging(settings: Settings) -> dict[str, Any]:
    from tritontube import logs

    return logs.configure(settings.log_level, settings.log_format)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker

    from tritontube import logs
    from tritontube.agents.app import create_worker_app
    from tritontube.deps import build_deps

    deps = build_deps(settings)
    try:
        worker_app = create_worker_app(settings, deps)
        worker = Worker(
            worker_app.app,
            loglevel=settings.log_level.lower(),
            quiet=True,
            redirect_stdouts=False,
            # mode sets logging up again at start: with our document, not its coloured text.
            logging_config=logs.logging_config(settings.log_level, settings.log_format),
        )
        worker.execute_from_commandline()
    finally:
        deps.close()
    return 0


def cmd_archiver(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from tritontube.agents.archiver import serve
    from tritontube.deps import build_deps
    from tritontube.streams import broker_compat

    if settings.kafka.embedded_broker_compat:
        broker_compat.apply()
    deps = build_deps(settings)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await serve(settings, deps.object_store, stopping)

    try:
        asyncio.run(run())
    finally:
        deps.close()
    return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.deps import build_deps
    from tritontube.http import server
    from tritontube.http.app import create_http_app

    if settings.http.base_url_is_guessed:
        raise StartupRefusedError(
            f"the API listens on {settings.http.host}:{settings.http.port}, which is no URL a "
            "user can reach: set TRITONTUBE_HTTP__PUBLIC_URL (signed media URLs are built on "
            "it, never on a request's Host header)"
        )
    app = create_http_app(settings, build_deps(settings))
    server.run(
        app,
        settings.http.host,
        settings.http.port,
        header_timeout=settings.http.header_timeout_seconds,
    )
    return 0


def dev_settings(settings: Settings) -> Settings:
    """What ``tritontube dev`` runs with: the embedded broker's fixes on, its public URL known
    (``http://host:port`` unless set), and the data directory's own random auth secret in
    place of the shipped placeholder."""
    from pydantic import SecretStr

    from tritontube.devstack.secret import load_or_create_dev_secret

    kafka = settings.kafka.model_copy(update={"embedded_broker_compat": True})
    http = settings.http.model_copy(update={"public_url": settings.http.base_url})
    update: dict[str, object] = {"kafka": kafka, "http": http}
    if settings.uses_shipped_secret:
        secret = SecretStr(load_or_create_dev_secret(settings.data_dir))
        update["auth"] = settings.auth.model_copy(update={"secret": secret})
    return settings.model_copy(update=update)


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.devstack.stack import run_dev

    return run_dev(dev_settings(settings), workers=args.workers)


def cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.streams.admin import ensure_topics

    created = asyncio.run(ensure_topics(settings.kafka))
    print("created:", ", ".join(created) if created else "nothing (all exist)")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from tritontube.http.auth import mint_token

    print(mint_token(token_settings(settings).auth, args.user, ttl_seconds=args.ttl))
    return 0


def token_settings(settings: Settings) -> Settings:
    """``token create`` signs with the configured secret; with the shipped placeholder, with
    the secret of the dev stack in ``data_dir`` (so tokens work against ``make dev``)."""
    from pydantic import SecretStr

    from tritontube.devstack.secret import read_dev_secret

    if not settings.uses_shipped_secret:
        return settings
    stored = read_dev_secret(settings.data_dir)
    if stored is not None:
        auth = settings.auth.model_copy(update={"secret": SecretStr(stored)})
        return settings.model_copy(update={"auth": auth})
    if settings.dev_mode:
        return settings
    raise StartupRefusedError(
        f"no auth secret: set TRITONTUBE_AUTH__SECRET, or start `tritontube dev` once so "
        f"{settings.data_dir} holds its own (a token signed with the shipped placeholder "
        "would be accepted by nothing)"
    )


class StartupRefusedError(RuntimeError):
    """A command refuses to run with these settings; the message says what to set."""


# Commands that verify tokens and must never trust the public placeholder secret.
_SECRET_CHECKED = frozenset({"api", "worker"})


def check_secret(settings: Settings, command: str) -> None:
    """Refuse to serve with the shipped auth secret (anyone can forge tokens with it) unless
    ``dev_mode`` says this is a developer's machine."""
    if command in _SECRET_CHECKED and settings.uses_shipped_secret and not settings.dev_mode:
        raise StartupRefusedError(
            "the auth secret is the shipped placeholder, which is public: set "
            "TRITONTUBE_AUTH__SECRET to a long random value (or TRITONTUBE_DEV_MODE=true on a "
            "developer's machine; `tritontube dev` makes its own secret)"
        )


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
    files = len(compat_check.schema_files())
    print(
        f"{len(problems)} problems in {files} schema files (history versions checked: {versions})"
    )
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tritontube", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="start the whole embedded stack on loopback")
    dev.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Faust workers in the group (worker i listens on worker.web_port + i)",
    )
    dev.set_defaults(func=cmd_dev)
    sub.add_parser("worker", help="run a Faust worker").set_defaults(func=cmd_worker)
    sub.add_parser("api", help="run the HTTP API and SPA").set_defaults(func=cmd_api)
    sub.add_parser(
        "archiver", help="archive every topic to the object store (one of a consumer group)"
    ).set_defaults(func=cmd_archiver)
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
    try:
        check_secret(settings, args.command)
        return int(args.func(settings, args))
    except StartupRefusedError as exc:
        print(f"tritontube {args.command}: refusing to start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
