"""Applications of a system in separate OS processes, on one host or several.

``run_application(system, name)`` runs one follower of a system until
stopped: it reads its upstream applications' notification logs straight
from their databases (or over HTTP), is woken by their recorders'
``wait_for_notification`` (LISTEN/NOTIFY on PostgreSQL) and, whatever the
prompting, catches up by position: nothing is skipped, nothing done twice.
``esox run module:system --app NAME`` calls it; ``MultiProcessRunner`` starts
one process per follower of a system with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from esox.application import LocalNotificationLog, NotificationLog
from esox.persistence import ApplicationRecorder, InfrastructureFactory
from esox.system.definition import System
from esox.system.errors import EventProcessingError, SystemDefinitionError
from esox.system.partition import (
    DEFAULT_LEASE_TTL,
    LeaseKeeper,
    PartitionedFollower,
    partitioned,
)
from esox.system.runners import Runner, wait_until_processed
from esox.utils import EnvType

__all__ = ["MultiProcessRunner", "run_application"]

DEFAULT_POLL_INTERVAL = 5.0

logger = logging.getLogger(__name__)

# The exit code of a spawned process that found itself, while importing the
# main module, about to start a runner: the script lacks its main guard.
_UNGUARDED_MAIN_EXIT = 87
_MAIN_GUARD_HINT = """\
Spawned processes import the main module ({main}), so the code that starts
the runner must only run in the process you started. Put it under the guard:

    if __name__ == "__main__":
        runner = MultiProcessRunner(system, env=env)
        runner.start()
        ...
"""


def _main_module() -> str:
    import sys

    # A spawned child runs the parent's main module as __mp_main__.
    for name in ("__mp_main__", "__main__"):
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            return str(path)
    return "your script"


def _refuse_unguarded_main() -> None:
    """In a spawned child still importing the parent's main module: exit at once
    with a code the parent recognises, instead of starting runners recursively."""
    import os
    import sys

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        sys.stderr.write(
            "esox: a MultiProcessRunner was created while its process was "
            "importing the main module.\n"
            + _MAIN_GUARD_HINT.format(main=_main_module())
        )
        sys.stderr.flush()
        os._exit(_UNGUARDED_MAIN_EXIT)


def run_application(
    system: System,
    name: str,
    env: EnvType | None = None,
    *,
    upstream_logs: Mapping[str, NotificationLog] | None = None,
    stop: threading.Event | None = None,
    on_ready: Callable[[], None] | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    partitions: int | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> None:
    """Run the follower ``name`` of ``system`` until ``stop`` is set.

    Each upstream is read from its own database (its settings are the
    environment's, prefixed with its name), unless ``upstream_logs`` gives
    a notification log for it (a remote one, over HTTP). New notifications
    wake the follower at once where the database can tell (PostgreSQL
    LISTEN/NOTIFY, SQLite commits); every ``poll_interval`` seconds it also
    pulls anyway. Errors are raised (the process should then exit, and be
    restarted: it resumes from its recorded position).

    With ``partitions``, this process is one of several that share the
    follower's work (see ``esox.system.partition``): it processes the
    partitions it leases in PostgreSQL, for ``lease_ttl`` seconds at a time.
    """
    if name not in system.follows:
        kind = "leads only" if name in system.leads else "follows nothing"
        msg = (
            f"{name} {kind} in this system: there is nothing to run. Use it "
            f"from the process that issues its commands"
        )
        raise SystemDefinitionError(msg)
    upstream_logs = dict(upstream_logs or {})
    stop = stop or threading.Event()
    wake = threading.Event()
    factories: list[InfrastructureFactory[Any]] = []
    watchers: list[threading.Thread] = []
    app = system.follower_cls(name)(env)
    keeper: LeaseKeeper | None = None
    try:
        share: PartitionedFollower | None = None
        if partitions is not None:
            share, keeper = partitioned(
                app, partitions=partitions, lease_ttl=lease_ttl, on_change=wake.set
            )
            keeper.start()
        for leader_name in system.follows[name]:
            log = upstream_logs.get(leader_name)
            if log is None:
                factory = InfrastructureFactory[Any].construct(
                    system.get_app_cls(leader_name).settings(env)
                )
                factories.append(factory)
                recorder = factory.application_recorder()
                log = LocalNotificationLog(recorder, section_size=app.pull_section_size)
                watchers.append(_watch(recorder, wake, stop, poll_interval))
            app.follow(leader_name, log)
        threading.Thread(target=_relay, args=(stop, wake), daemon=True).start()
        for watcher in watchers:
            watcher.start()
        logger.info(
            "%s is following %s (pulling every %ss at least)",
            name,
            ", ".join(system.follows[name]),
            poll_interval,
        )
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            wake.clear()
            logger.debug("%s pulls from %s", name, ", ".join(system.follows[name]))
            for leader_name in system.follows[name]:
                if share is not None:
                    share.pull_and_process(leader_name, interrupt=stop)
                else:
                    app._pull_and_process(leader_name, interrupt=stop)
            wake.wait(poll_interval)
    except BaseException as e:
        logger.error("%s stopped: %s: %s", name, type(e).__name__, e)
        raise
    finally:
        stop.set()  # the watchers notice within a second, or fail on the closed
        if keeper is not None:
            keeper.stop()  # the others take its partitions at their next heartbeat
        app.close()  # recorders and stop: either way, no need to wait for them
        for factory in factories:
            factory.close()


def _relay(stop: threading.Event, wake: threading.Event) -> None:
    stop.wait()
    wake.set()


def _watch(
    recorder: ApplicationRecorder,
    wake: threading.Event,
    stop: threading.Event,
    poll_interval: float,
) -> threading.Thread:
    """A thread that wakes the follower when the upstream has new notifications."""
    timeout = min(poll_interval, 1.0)  # how soon it notices ``stop``

    def watch() -> None:
        last = 0
        while not stop.is_set():
            try:
                if recorder.wait_for_notification(last, timeout):
                    last = recorder.max_notification_id() or last
                    wake.set()
            except Exception:
                # The follower's own pulls meet (and raise) lasting errors.
                stop.wait(timeout)

    return threading.Thread(target=watch, name="esox upstream watcher", daemon=True)


def _process_main(
    system: System,
    name: str,
    env: dict[str, str],
    control: Connection,
    status: Connection,
    poll_interval: float,
    partitions: int | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
) -> None:
    """A runner's child process: run one follower (or a partitioned share of
    it); report ready and errors."""
    stop = threading.Event()

    def await_stop() -> None:
        # A message, or the end of the pipe: the runner's process is gone.
        with contextlib.suppress(EOFError, OSError):
            control.recv()
        stop.set()

    threading.Thread(target=await_stop, daemon=True).start()
    try:
        run_application(
            system,
            name,
            env,
            stop=stop,
            on_ready=lambda: status.send(("ready",)),
            poll_interval=poll_interval,
            partitions=partitions,
            lease_ttl=lease_ttl,
        )
    except BaseException as e:
        message = f"{type(e).__name__}: {e}"
        status.send(("error", message, traceback.format_exc()))
        raise SystemExit(1) from None


class MultiProcessRunner(Runner[Any]):
    """Runs each follower of a system in its own OS process (``spawn``).

    The databases must be shared between processes: PostgreSQL (each
    application's tables are prefixed with its name), or SQLite with a file
    per application (``<NAME>_SQLITE_DBNAME``). ``get()`` returns
    applications constructed in this process over the same databases: use
    the leaders to issue commands, the followers to query. ``wait()`` blocks
    until the followers have caught up. A follower process that fails or
    dies is reported by the next ``get()``, ``wait()`` or ``stop()``;
    ``restart(name)`` replaces its process, which resumes from its position.

    ``workers={"Ledger": 3}`` runs that follower as 3 processes sharing its
    upstream's ``partitions`` (see ``esox.system.partition``; its database
    must be PostgreSQL), named ``Ledger#0`` to ``Ledger#2`` in ``processes``;
    ``restart("Ledger#1")`` replaces one of them, ``restart("Ledger")`` all.
    """

    def __init__(
        self,
        system: System,
        env: EnvType | None = None,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        start_timeout: float = 60.0,
        start_method: str = "spawn",
        workers: Mapping[str, int] | None = None,
        partitions: int = 16,
        lease_ttl: float = DEFAULT_LEASE_TTL,
    ) -> None:
        _refuse_unguarded_main()
        super().__init__(system, env)
        self.workers = dict(workers or {})
        for name, count in self.workers.items():
            if name not in system.follows:
                msg = (
                    f"workers: {name!r} is not a follower of this system "
                    f"(followers: {', '.join(system.followers)})"
                )
                raise SystemDefinitionError(msg)
            if type(count) is not int or count < 1:
                msg = f"workers: {name!r} needs a number of processes, not {count!r}"
                raise ValueError(msg)
        if self.workers:
            from esox.postgres.leases import check_partitions

            check_partitions(partitions)
        self.partitions = partitions
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.start_timeout = start_timeout
        self._context = multiprocessing.get_context(start_method)
        self.processes: dict[str, BaseProcess] = {}
        self._control: dict[str, Connection] = {}
        self._status: dict[str, Connection] = {}
        self._reported: set[int] = set()
        self._errors: dict[str, EventProcessingError] = {}

    def start(self) -> None:
        """Construct the applications here, then start a process per follower."""
        super().start()
        try:
            for name in self.system.names:
                self.apps[name] = self.system.get_app_cls(name)(env=self.env)
            self._check_shared_databases()
            deadline = time.monotonic() + self.start_timeout
            keys = self._process_keys()
            for key in keys:
                self._spawn(key)
            for key in keys:
                self._await_ready(key, deadline)
        except BaseException:
            self.stop_processes()
            self._close_apps()
            self.is_started = False
            raise

    def _process_keys(self, name: str | None = None) -> list[str]:
        """The processes' names: a follower's, or ``<follower>#<i>`` for each
        process of a partitioned one (of ``name`` only, if given)."""
        keys: list[str] = []
        for follower in self.system.followers:
            if name is not None and follower != name:
                continue
            count = self.workers.get(follower)
            if count is None:
                keys.append(follower)
            else:
                keys += [f"{follower}#{i}" for i in range(count)]
        return keys

    def _check_shared_databases(self) -> None:
        from esox.memory import MemoryFactory
        from esox.system.runners import _check_distinct_databases

        for name, app in self.apps.items():
            database = getattr(app.factory, "database", None)
            if isinstance(app.factory, MemoryFactory) or getattr(
                database, "is_memory", False
            ):
                msg = (
                    f"{name} keeps its events in memory, where other processes "
                    "can't read them: set PERSISTENCE_MODULE=esox.postgres (or "
                    "esox.sqlite with a file per application)"
                )
                raise SystemDefinitionError(msg)
        _check_distinct_databases(self.apps)

    def _spawn(self, name: str) -> None:
        follower = name.partition("#")[0]
        partitions = self.partitions if follower in self.workers else None
        control_r, control_w = self._context.Pipe(duplex=False)
        status_r, status_w = self._context.Pipe(duplex=False)
        process = self._context.Process(  # type: ignore[attr-defined]
            target=_process_main,
            args=(
                self.system,
                follower,
                dict(self.env or {}),
                control_r,
                status_w,
                self.poll_interval,
                partitions,
                self.lease_ttl,
            ),
            name=f"esox {name}",
            daemon=True,
        )
        process.start()
        logger.info("Started the process of %s (pid %s)", name, process.pid)
        control_r.close()
        status_w.close()
        self.processes[name] = process
        self._control[name] = control_w
        self._status[name] = status_r

    def _await_ready(self, name: str, deadline: float) -> None:
        process, status = self.processes[name], self._status[name]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"The process of {name} did not start in {self.start_timeout}s"
                raise TimeoutError(msg)
            try:
                if status.poll(min(remaining, 0.25)):
                    message = status.recv()
                    if message[0] == "ready":
                        logger.info("The process of %s is ready", name)
                        return
                    self._report(name, message)
            except EOFError:
                pass
            exitcode = process.exitcode  # once: it may change between two reads
            if exitcode == _UNGUARDED_MAIN_EXIT:
                msg = (
                    f"The process of {name} could not start: it re-ran the code "
                    "that starts this MultiProcessRunner.\n"
                    + _MAIN_GUARD_HINT.format(main=_main_module())
                )
                raise SystemDefinitionError(msg)
            if exitcode is not None:
                self._report_exit(name, process)
                self._raise_error()
                msg = f"The process of {name} exited with code {exitcode}"
                raise EventProcessingError(msg)

    def _report(self, name: str, message: tuple[Any, ...]) -> None:
        if message[0] == "error":
            logger.error("The process of %s failed: %s", name, message[1])
            error = EventProcessingError(
                f"The process of {name} failed: {message[1]}\n{message[2]}"
            )
            self._errors.setdefault(name, error)
            self._reported.add(id(self.processes[name]))

    def _report_exit(self, name: str, process: BaseProcess) -> None:
        if id(process) in self._reported:
            return
        self._reported.add(id(process))
        logger.error(
            "The process of %s (pid %s) exited with code %s",
            name,
            process.pid,
            process.exitcode,
        )
        self._errors.setdefault(
            name,
            EventProcessingError(
                f"The process of {name} (pid {process.pid}) exited unexpectedly "
                f"with code {process.exitcode}; restart({name!r}) resumes it"
            ),
        )

    def _check(self) -> None:
        """Collect the errors and deaths of the processes; raise the first."""
        for name, process in self.processes.items():
            status = self._status[name]
            try:
                while status.poll():
                    self._report(name, status.recv())
            except (EOFError, OSError):
                pass
            if process.exitcode is not None:
                self._report_exit(name, process)
        self._raise_error()

    def _raise_error(self) -> None:
        if self._errors:
            raise next(iter(self._errors.values()))

    def get(self, cls: type[Any]) -> Any:
        """The application ``cls``, constructed in this process; raises errors first."""
        self._check()
        return super().get(cls)

    def wait(self, timeout: float = 30.0) -> None:
        """Block until every follower has processed all its upstream events."""
        wait_until_processed(
            self.system,
            self.apps,
            timeout,
            check=self._check,
            partitions=dict.fromkeys(self.workers, self.partitions),
        )

    def restart(self, name: str) -> None:
        """Replace the process of follower ``name`` (stopping it if alive), or
        every process of a partitioned follower (one: ``"<name>#<i>"``).

        Forgets the old process's error: the new one resumes from the
        follower's recorded position.
        """
        keys = [name] if "#" in name else self._process_keys(name) or [name]
        for key in keys:
            logger.info("Restarting the process of %s", key)
            self._stop_process(key, timeout=5.0)
            self._errors.pop(key, None)
            self._spawn(key)
        deadline = time.monotonic() + self.start_timeout
        for key in keys:
            self._await_ready(key, deadline)

    def _stop_process(self, name: str, timeout: float) -> None:
        process = self.processes.pop(name, None)
        control = self._control.pop(name, None)
        status = self._status.pop(name, None)
        if process is None:
            return
        if control is not None:
            with contextlib.suppress(OSError):
                control.send("stop")
            control.close()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
        if status is not None:
            status.close()

    def stop_processes(self, timeout: float = 10.0) -> None:
        """Ask every follower process to stop; kill those that don't in time."""
        for name in list(self.processes):
            if name in self._control:
                with contextlib.suppress(OSError):
                    self._control[name].send("stop")
        deadline = time.monotonic() + timeout
        for name in list(self.processes):
            status = self._status[name]
            self.processes[name].join(max(0.0, deadline - time.monotonic()))
            try:
                while status.poll():
                    self._report(name, status.recv())
            except (EOFError, OSError):
                pass
            self._stop_process(name, timeout=0)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the processes, close the applications, raise a follower's error."""
        self.stop_processes(timeout)
        self._close_apps()
        self.is_started = False
        errors, self._errors = self._errors, {}
        if errors:
            raise next(iter(errors.values()))
