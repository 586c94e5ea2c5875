"""The ``esox`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def demo(args: argparse.Namespace) -> int:
    """Run a demo application and show what happened."""
    from esox.examples.demo import main

    main(args.example, args.db, args.accounts, args.transfers, args.seed)
    return 0


def serve(args: argparse.Namespace) -> int:
    """Serve an application's notification log over HTTP (uvicorn)."""
    import os

    import uvicorn

    from esox.interface.server import create_app, load_application

    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            print(
                f"esox serve: environment variable {args.token_env} is not set",
                file=sys.stderr,
            )
            return 2
    try:
        application = load_application(args.application)
    except ValueError as e:
        print(f"esox serve: {e}", file=sys.stderr)
        return 2
    try:
        uvicorn.run(
            create_app(application, token=token),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    finally:
        application.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one follower of a system as this process, until SIGTERM or Ctrl-C."""
    import os
    import signal
    import threading

    from esox.system import System, run_application
    from esox.utils import TopicError, resolve_topic

    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # 'myapp:system' finds ./myapp.py
    try:
        system = resolve_topic(args.system)
    except TopicError as e:
        print(f"esox run: {e}", file=sys.stderr)
        return 2
    if not isinstance(system, System):
        print(f"esox run: {args.system!r} is not a System", file=sys.stderr)
        return 2
    if args.app not in system.names:
        print(
            f"esox run: no application {args.app!r} in {args.system} "
            f"(it has {', '.join(system.names)})",
            file=sys.stderr,
        )
        return 2
    if args.app not in system.follows:
        print(
            f"esox run: {args.app} follows nothing in {args.system}, so there is "
            f"nothing to run (followers: {', '.join(system.followers)})",
            file=sys.stderr,
        )
        return 2
    upstream_logs = {}
    for spec in args.upstream:
        name, sep, url = spec.partition("=")
        if not sep or name not in system.follows[args.app]:
            print(
                f"esox run: --upstream {spec!r}: expected NAME=URL, NAME one of "
                f"{', '.join(system.follows[args.app]) or 'nothing'}",
                file=sys.stderr,
            )
            return 2
        from esox.interface import RemoteNotificationLog

        token = os.environ.get(args.token_env) if args.token_env else None
        upstream_logs[name] = RemoteNotificationLog(url, token=token)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def ready() -> None:
        upstreams = ", ".join(system.follows[args.app])
        print(f"esox run: {args.app} is following {upstreams}", file=sys.stderr)

    try:
        run_application(
            system,
            args.app,
            upstream_logs=upstream_logs,
            stop=stop,
            on_ready=ready,
            poll_interval=args.poll_interval,
        )
    except Exception as e:
        print(f"esox run: {args.app} stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        for log in upstream_logs.values():
            log.close()
    return 0


def bench(args: argparse.Namespace) -> int:
    """Compare esox with eventsourcing 9.x and the practical limits."""
    from pathlib import Path

    from esox.bench import Options, run_bench
    from esox.bench.plan import KINDS

    kinds = tuple(k.strip() for k in args.persistence.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        print(
            f"esox bench: --persistence {args.persistence!r}: expected a "
            f"comma-separated list of {', '.join(KINDS)}",
            file=sys.stderr,
        )
        return 2
    if args.scale is not None and args.scale < 100:
        print("esox bench: --scale must be at least 100", file=sys.stderr)
        return 2
    run_bench(
        Options(
            quick=args.quick,
            compare=args.compare,
            persistence=kinds,
            out=Path(args.out),
            scale=args.scale,
            only=tuple(args.only),
            profile=not args.no_profile,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esox`` console script."""
    parser = argparse.ArgumentParser(
        prog="esox", description="esox: event sourcing with a Rust core"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser(
        "demo", help="run the bank accounts demo on an embedded SQLite file"
    )
    demo_parser.add_argument(
        "--example", choices=["bankaccounts", "dogschool"], default="bankaccounts"
    )
    demo_parser.add_argument(
        "--db", help="SQLite file to use (default: a temporary file, removed after)"
    )
    demo_parser.add_argument("--accounts", type=int, default=100)
    demo_parser.add_argument("--transfers", type=int, default=3000)
    demo_parser.add_argument("--seed", type=int, default=1)
    demo_parser.set_defaults(func=demo)
    serve_parser = commands.add_parser(
        "serve", help="serve an application's notification log over HTTP"
    )
    serve_parser.add_argument(
        "application",
        help="'module:attribute': an Application, or a callable returning one",
    )
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <token>', the token read from "
        "environment variable NAME (default: ESOX_HTTP_TOKEN, if set)",
    )
    serve_parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
    )
    serve_parser.set_defaults(func=serve)
    run_parser = commands.add_parser(
        "run", help="run one follower of a system as this process"
    )
    run_parser.add_argument("system", help="'module:attribute' naming a System")
    run_parser.add_argument(
        "--app", required=True, help="name of the follower application to run"
    )
    run_parser.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="read upstream NAME over HTTP (esox serve) instead of its database",
    )
    run_parser.add_argument(
        "--token-env",
        metavar="VAR",
        default="ESOX_HTTP_TOKEN",
        help="environment variable holding the HTTP bearer token",
    )
    run_parser.add_argument(
        "--poll-interval",
        type=float,
        default=5.0,
        help="seconds between pulls when no notification arrives (default 5)",
    )
    run_parser.set_defaults(func=run)
    bench_parser = commands.add_parser(
        "bench", help="compare esox with eventsourcing 9.x on this machine"
    )
    bench_parser.add_argument(
        "--quick",
        action="store_true",
        help="small scales and few repeats: about a minute (the full run: ~10)",
    )
    bench_parser.add_argument(
        "--compare",
        choices=["eventsourcing", "none"],
        default="eventsourcing",
        help="the library to compare with (default eventsourcing, if installed)",
    )
    bench_parser.add_argument(
        "--persistence",
        default="memory,sqlite,postgres",
        metavar="KINDS",
        help="comma-separated: memory, sqlite, postgres (default all; postgres "
        "from POSTGRES_* or ESOX_BENCH_POSTGRES_* variables, skipped if "
        "unreachable)",
    )
    bench_parser.add_argument(
        "--out", default="bench-out", help="where results.json and chart.png go"
    )
    bench_parser.add_argument(
        "--scale",
        type=int,
        metavar="EVENTS",
        help="one scale instead of 1,000/10,000/100,000 (small ones for smoke tests)",
    )
    bench_parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FAMILY",
        help="only the workloads whose name starts with FAMILY (repeatable), "
        "e.g. 'mapper', 'recorder insert', 'command latency'",
    )
    bench_parser.add_argument(
        "--no-profile",
        action="store_true",
        help="do not profile the workloads of missed goals",
    )
    bench_parser.set_defaults(func=bench)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
