"""The ``esox`` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

LOG_LEVELS = ["critical", "error", "warning", "info", "debug"]
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr and exit code 2, never a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, unless it has none or its help names it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, []) or "default" in text:
            return text
        return super()._get_help_string(action)


def _fail(command: str, message: str) -> int:
    print(f"esox {command}: {message}", file=sys.stderr)
    return 2


def _missing_extra(command: str, extra: str, error: ImportError) -> int:
    return _fail(
        command,
        f"needs the {extra!r} extra: pip install 'esox[{extra}]' ({error})",
    )


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer from ``minimum`` (to ``maximum``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            msg = f"expected an integer, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if value < minimum or (maximum is not None and value > maximum):
            limits = (
                f"from {minimum} to {maximum}" if maximum else f"at least {minimum}"
            )
            msg = f"must be {limits}, got {value}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = "integer"
    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"expected a number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not value > 0 or value == float("inf"):
        msg = f"must be a positive number of seconds, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


_positive_float.__name__ = "number"


def _logging_level(name: str) -> int:
    """The ``logging`` level of a ``--log-level`` (uvicorn's "trace" is debug)."""
    return (
        logging.DEBUG
        if name == "trace"
        else logging.getLevelNamesMapping()[name.upper()]
    )


def demo(args: argparse.Namespace) -> int:
    """Run a demo application and show what happened."""
    from esox.examples.demo import main

    if args.db and not Path(args.db).parent.is_dir():
        return _fail(
            "demo", f"--db {args.db}: directory {Path(args.db).parent} does not exist"
        )
    from esox.persistence import PersistenceError

    try:
        main(args.example, args.db, args.accounts, args.transfers, args.seed)
    except (PersistenceError, OSError) as e:
        return _fail("demo", f"{type(e).__name__}: {e}")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Serve an application's notification log over HTTP (uvicorn)."""
    try:
        import uvicorn

        from esox.interface.server import (
            ALLOW_ANONYMOUS_ENV,
            TOKEN_ENV,
            create_app,
            load_application,
        )
    except ImportError as e:
        return _missing_extra("serve", "http", e)
    from esox.utils import Environment, SettingError

    logging.basicConfig(
        level=_logging_level(args.log_level), format=_LOG_FORMAT, stream=sys.stderr
    )
    # --no-auth mirrors ESOX_HTTP_ALLOW_ANONYMOUS, read (and refused when it is
    # no truth value) as create_app reads it.
    try:
        allow_anonymous = args.no_auth or Environment(env=dict(os.environ)).read_bool(
            ALLOW_ANONYMOUS_ENV, default=False
        )
    except SettingError as e:
        return _fail("serve", str(e))
    token_env = args.token_env or TOKEN_ENV
    token = os.environ.get(token_env)
    if args.no_auth:
        if args.token_env:
            return _fail("serve", "--no-auth and --token-env contradict each other")
        token = ""
    elif token is None and args.token_env:
        return _fail("serve", f"environment variable {args.token_env} is not set")
    elif token is not None and not token.strip() and not allow_anonymous:
        return _fail(
            "serve",
            f"environment variable {token_env} is empty, which would let anyone "
            f"read the log: set a token, or pass --no-auth (or set "
            f"{ALLOW_ANONYMOUS_ENV}=y) to serve without one",
        )
    try:
        application = load_application(args.application)
    except ValueError as e:
        return _fail("serve", str(e))
    except Exception as e:
        return _fail("serve", f"{args.application} failed: {type(e).__name__}: {e}")
    try:
        app = create_app(
            application,
            token=token,
            allow_anonymous=allow_anonymous,
            max_concurrent=args.max_concurrent,
            write_timeout=args.write_timeout,
        )
        if not token:
            logging.getLogger("esox.interface.server").warning(
                "Serving the log of %s on %s:%s without a bearer token: anyone "
                "who can reach it can read every event",
                application.name,
                args.host,
                args.port,
            )
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    except ValueError as e:
        return _fail("serve", str(e))
    finally:
        application.close()
    return 0


def run(args: argparse.Namespace) -> int:
    """Run one follower of a system as this process, until SIGTERM or Ctrl-C."""
    import signal
    import threading

    from esox.system import System, run_application
    from esox.utils import TopicError, redact_url_credentials, resolve_topic

    logging.basicConfig(
        level=_logging_level(args.log_level), format=_LOG_FORMAT, stream=sys.stderr
    )
    logger = logging.getLogger("esox.cli")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # 'myapp:system' finds ./myapp.py
    try:
        system = resolve_topic(args.system)
    except TopicError as e:
        return _fail("run", str(e))
    if not isinstance(system, System):
        return _fail("run", f"{args.system!r} is not a System")
    if args.app not in system.names:
        return _fail(
            "run",
            f"no application {args.app!r} in {args.system} "
            f"(it has {', '.join(system.names)})",
        )
    if args.app not in system.follows:
        return _fail(
            "run",
            f"{args.app} follows nothing in {args.system}, so there is nothing to "
            f"run (followers: {', '.join(system.followers)})",
        )
    upstream_logs = {}
    for spec in args.upstream:
        name, sep, url = spec.partition("=")
        if not sep or name not in system.follows[args.app]:
            return _fail(
                "run",
                f"--upstream {redact_url_credentials(spec)!r}: expected NAME=URL, "
                "NAME one of "
                f"{', '.join(system.follows[args.app]) or 'nothing'}",
            )
        try:
            from esox.interface import RemoteNotificationLog

            token = os.environ.get(args.token_env) if args.token_env else None
            upstream_logs[name] = RemoteNotificationLog(url, token=token)
        except ImportError as e:
            return _missing_extra("run", "http", e)
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
            partitions=args.partitions,
            lease_ttl=args.lease_ttl,
        )
    except Exception as e:
        logger.debug("%s stopped", args.app, exc_info=e)
        print(f"esox run: {args.app} stopped: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        for log in upstream_logs.values():
            log.close()
    logger.info("%s stopped", args.app)
    return 0


def bench(args: argparse.Namespace) -> int:
    """Compare esox with eventsourcing 9.x and the practical limits."""
    from esox.bench import Options, run_bench
    from esox.bench.plan import KINDS
    from esox.bench.workloads import FAMILIES

    kinds = tuple(k.strip() for k in args.persistence.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        return _fail(
            "bench",
            f"--persistence {args.persistence!r}: expected a comma-separated list "
            f"of {', '.join(KINDS)}",
        )
    families = (*FAMILIES, "command latency")
    for prefix in args.only:
        if not prefix or not any(f.startswith(prefix) for f in families):
            return _fail(
                "bench",
                f"--only {prefix!r} names no workload family: expected one of "
                f"{', '.join(repr(f) for f in families)} (or the start of one)",
            )
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail("bench", f"--out {args.out}: not a directory")
    run_bench(
        Options(
            quick=args.quick,
            compare=args.compare,
            persistence=kinds,
            out=out,
            scale=args.scale,
            only=tuple(args.only),
            profile=not args.no_profile,
            goals=args.goals,
        )
    )
    return 0


def _command(
    commands: Any, name: str, func: Callable[[argparse.Namespace], int], help: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=help,
        formatter_class=_Help,
    )
    parser.set_defaults(func=func)
    return parser


def parser() -> argparse.ArgumentParser:
    """The ``esox`` command's argument parser."""
    from esox import __version__

    main_parser = _Parser(
        prog="esox", description="esox: event sourcing with a Rust core"
    )
    main_parser.add_argument(
        "--version", action="version", version=f"esox {__version__}"
    )
    commands = main_parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    demo_parser = _command(
        commands, "demo", demo, "run the bank accounts demo on an embedded SQLite file"
    )
    demo_parser.add_argument(
        "--example",
        choices=["bankaccounts", "dogschool"],
        default="bankaccounts",
        help="which demo to run",
    )
    demo_parser.add_argument(
        "--db", help="SQLite file to use (default: a temporary file, removed after)"
    )
    demo_parser.add_argument(
        "--accounts",
        type=_integer(2),
        default=100,
        help="bank accounts to open (at least 2, to transfer between)",
    )
    demo_parser.add_argument(
        "--transfers", type=_integer(0), default=3000, help="random transfers to make"
    )
    demo_parser.add_argument(
        "--seed", type=int, default=1, help="seed of the random transfers"
    )

    serve_parser = _command(
        commands, "serve", serve, "serve an application's notification log over HTTP"
    )
    serve_parser.add_argument(
        "application",
        help="'module:attribute': an Application, or a callable returning one",
    )
    serve_parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on"
    )
    serve_parser.add_argument(
        "--port", type=_integer(1, 65535), default=8000, help="TCP port to listen on"
    )
    serve_parser.add_argument(
        "--token-env",
        metavar="NAME",
        help="require 'Authorization: Bearer <token>', the token read from "
        "environment variable NAME (default: ESOX_HTTP_TOKEN, if set)",
    )
    serve_parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a bearer token even if ESOX_HTTP_TOKEN is set but empty",
    )
    serve_parser.add_argument(
        "--max-concurrent",
        type=_integer(1),
        metavar="N",
        default=4,
        help="selections and sections built or sent at once; more wait a second, "
        "then get 503",
    )
    serve_parser.add_argument(
        "--write-timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=30.0,
        help="seconds a client may leave its response unread before it is disconnected",
    )
    serve_parser.add_argument(
        "--log-level",
        default="info",
        choices=[*LOG_LEVELS, "trace"],
        help="uvicorn's and esox's log level",
    )

    run_parser = _command(
        commands, "run", run, "run one follower of a system as this process"
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
        help="read upstream NAME over HTTP (esox serve) instead of its database "
        "(repeatable)",
    )
    run_parser.add_argument(
        "--token-env",
        metavar="VAR",
        default="ESOX_HTTP_TOKEN",
        help="environment variable holding the HTTP bearer token",
    )
    run_parser.add_argument(
        "--poll-interval",
        type=_positive_float,
        metavar="SECONDS",
        default=5.0,
        help="seconds between pulls when no notification arrives",
    )
    run_parser.add_argument(
        "--partitions",
        type=_integer(1, 4096),
        metavar="N",
        help="share the follower's work with the other processes run with the "
        "same N: its upstream split into N partitions by originator id, leased "
        "in its PostgreSQL database (every process of it must give the same N)",
    )
    run_parser.add_argument(
        "--lease-ttl",
        type=_positive_float,
        metavar="SECONDS",
        default=6.0,
        help="with --partitions: how long a lease lasts unless renewed (every "
        "third of it); a killed process's partitions move within ttl*4/3",
    )
    run_parser.add_argument(
        "--log-level",
        default="info",
        choices=LOG_LEVELS,
        help="log level of esox's loggers (catch-up progress is at info, "
        "each batch at debug)",
    )

    bench_parser = _command(
        commands, "bench", bench, "compare esox with eventsourcing 9.x on this machine"
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
        help="the library to compare with (if installed)",
    )
    bench_parser.add_argument(
        "--persistence",
        default="memory,sqlite,postgres",
        metavar="KINDS",
        help="comma-separated: memory, sqlite, postgres (postgres from POSTGRES_* "
        "or ESOX_BENCH_POSTGRES_* variables, skipped if unreachable)",
    )
    bench_parser.add_argument(
        "--out", default="bench-out", help="where results.json and chart.png go"
    )
    bench_parser.add_argument(
        "--scale",
        type=_integer(100),
        metavar="EVENTS",
        help="one scale instead of 1,000/10,000/100,000 (at least 100)",
    )
    bench_parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FAMILY",
        help="only the workloads whose family starts with FAMILY (repeatable): "
        "mapper encode, mapper decode, recorder insert, concurrent insert, "
        "pg writers, recorder select, notification select, application save, "
        "repository get, follower processing, partitions, dcb, command latency",
    )
    bench_parser.add_argument(
        "--goals",
        action="store_true",
        help="also judge esox's own performance goals (for esox's developers)",
    )
    bench_parser.add_argument(
        "--no-profile",
        action="store_true",
        help="with --goals: do not profile the workloads of missed goals",
    )
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esox`` console script."""
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
