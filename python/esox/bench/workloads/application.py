"""Application workloads: saving aggregates, getting one from the repository,
and a follower processing a leader's events (SingleThreadedRunner).

Each library runs its own application class with the same configuration
(``PERSISTENCE_MODULE`` and friends); only the library differs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from esox.bench import models
from esox.bench.harness import Twin, Workload
from esox.bench.plan import Plan
from esox.bench.workloads.storage import (
    Fresh,
    Kind,
    database_env,
    kinds,
    new_database,
    postgres_insert_rows,
    sqlite_insert_rows,
)

__all__ = ["PER_COMMAND", "PER_SAVE", "dog_class", "libraries", "make_app", "workloads"]

PER_SAVE = 100  # aggregates per Application.save in "application save"
PER_COMMAND = 10  # leader events per command in "follower processing"


def workloads(plan: Plan) -> list[Workload]:
    """The application workloads of the plan."""
    found: list[Workload] = []
    slow = plan.slow_scales()
    for kind in kinds(plan):
        for scale in slow:
            if scale < PER_SAVE:
                continue
            found.append(
                Workload(
                    family="application save",
                    variant=f"{kind.name}, {PER_SAVE} aggregates per save",
                    scale=scale,
                    units=scale // PER_SAVE * PER_SAVE,
                    build=partial(build_save, plan, kind, scale),
                    repeats=plan.repeats_at(scale),
                    side_repeats=plan.side_repeats_at(scale, slow),
                    persistence=kind.name,
                    note="a new application (and database) every repeat",
                )
            )
    for kind in kinds(plan, sync_modes=("FULL",)):
        name = "SQLite" if kind.store == "sqlite" else kind.name
        for scale in plan.scales:
            found.append(
                Workload(
                    family="repository get",
                    variant=name,
                    scale=scale,
                    units=scale,
                    build=partial(build_get, plan, kind, scale, ""),
                    repeats=plan.repeats_at(scale),
                    side_repeats=plan.side_repeats_at(scale),
                    persistence=name,
                )
            )
        scale = plan.snapshot_scale
        for how in ("snapshot", "cache"):
            found.append(
                Workload(
                    family="repository get",
                    variant=f"{name}, {how}",
                    scale=scale,
                    units=1,
                    unit="op",
                    build=partial(build_get, plan, kind, scale, how),
                    repeats=plan.repeats_at(scale) * 3,
                    persistence=name,
                    note=f"aggregate of {scale:,} events, from its {how}",
                )
            )
    for kind in kinds(plan, sync_modes=("NORMAL",)):
        if kind.store == "postgres":
            continue  # one round trip per event: see benches/bench_system.py
        for scale in slow:
            found.append(
                Workload(
                    family="follower processing",
                    variant=kind.name,
                    scale=scale,
                    units=scale,
                    build=partial(build_follower, plan, kind, scale),
                    repeats=plan.repeats_at(scale),
                    side_repeats=plan.side_repeats_at(scale, slow),
                    persistence=kind.name,
                    note=f"leader saves {PER_COMMAND} events per command; the "
                    "follower records one event per event, each with its tracking",
                )
            )
    return found


def make_app(library: str, kind: Kind, plan: Plan, fresh: Fresh, **env: str) -> Any:
    """A new application of ``library`` on a new database of ``kind``."""
    return new_app(library, kind, plan, fresh, **env)[0]


def new_app(
    library: str, kind: Kind, plan: Plan, fresh: Fresh, **env: str
) -> tuple[Any, str]:
    """A new application of ``library`` and its new database of ``kind``."""
    database = new_database(kind, plan, fresh)
    settings = database_env(kind, library, database) | env
    if library == "esox":
        from esox import Application

        app: Any = Application(env=settings)
    else:
        from eventsourcing.application import Application as EsApplication

        app = EsApplication(env=settings)
    fresh.on_release(app.close)
    return app, database


def save_quickly(app: Any, kind: Kind, database: str, events: list[Any]) -> None:
    """Record an aggregate's events as ``app.save`` would, encoded by the
    app's own mapper, but written with the plain driver: eventsourcing takes
    minutes to insert 100,000 events in one PostgreSQL statement."""
    if kind.store == "memory":
        app.save(*events)
        return
    mapper = app.mapper
    if hasattr(mapper, "to_stored_events"):
        stored = mapper.to_stored_events(events)
    else:
        stored = [mapper.to_stored_event(e) for e in events]
    rows = [(s.originator_id, s.originator_version, s.topic, s.state) for s in stored]
    if kind.store == "sqlite":
        sqlite_insert_rows(database, rows)
    else:
        postgres_insert_rows(database, rows, app.recorder.events_table_name)


def dog_class(library: str) -> Any:
    if library == "esox":
        return models.Dog
    from esox.bench import es_models

    return es_models.Dog


def libraries(plan: Plan) -> list[str]:
    return ["esox", "eventsourcing"] if plan.eventsourcing else ["esox"]


def build_save(plan: Plan, kind: Kind, scale: int) -> dict[str, Twin]:
    """Twins that save ``scale`` new dogs, ``PER_SAVE`` per save."""

    def twin(library: str) -> Twin:
        fresh = Fresh()
        dog_cls = dog_class(library)

        def prepare() -> Callable[[], object]:
            fresh.release()
            app = make_app(library, kind, plan, fresh)
            groups = [
                [dog_cls(f"dog {i + j}") for j in range(PER_SAVE)]
                for i in range(0, scale - PER_SAVE + 1, PER_SAVE)
            ]
            save = app.save

            def block() -> None:
                for dogs in groups:
                    save(*dogs)

            return block

        return Twin(prepare, fresh.release)

    return {library: twin(library) for library in libraries(plan)}


def build_get(plan: Plan, kind: Kind, scale: int, how: str) -> dict[str, Twin]:
    """Twins that get a dog of ``scale`` events: replayed from its events, or
    ``how`` = "snapshot" (taken at its last version) or "cache" (already got)."""
    env = {}
    if how == "snapshot":
        env["IS_SNAPSHOTTING_ENABLED"] = "y"
    elif how == "cache":
        env["AGGREGATE_CACHE_MAXSIZE"] = "100"

    def twin(library: str) -> Twin:
        fresh = Fresh()
        with fresh.released_on_error():
            app, database = new_app(library, kind, plan, fresh, **env)
            dog = dog_class(library)("Fido")
            for i in range(scale - 1):
                dog.add_trick(f"trick {i}")
            save_quickly(app, kind, database, list(dog.collect_events()))
            if how == "snapshot":
                app.take_snapshot(dog.id)
            elif how == "cache":
                app.repository.get(dog.id)
        block = partial(app.repository.get, dog.id)
        return Twin(lambda: block, fresh.release)

    twins: dict[str, Twin] = {}
    try:
        for library in libraries(plan):
            twins[library] = twin(library)
    except BaseException:
        for made in twins.values():
            made.close()
        raise
    return twins


def build_follower(plan: Plan, kind: Kind, scale: int) -> dict[str, Twin]:
    """Twins that issue ``scale`` leader events and have them processed."""
    commands = [
        [f"item {i + j}" for j in range(PER_COMMAND)]
        for i in range(0, scale - PER_COMMAND + 1, PER_COMMAND)
    ]

    def twin(library: str) -> Twin:
        fresh = Fresh()

        def prepare() -> Callable[[], object]:
            fresh.release()
            items = _start_runner(library, kind, plan, fresh)
            create = items.create

            def block() -> None:
                for labels in commands:
                    create(labels)

            return block

        return Twin(prepare, fresh.release)

    return {library: twin(library) for library in libraries(plan)}


def _start_runner(library: str, kind: Kind, plan: Plan, fresh: Fresh) -> Any:
    """Start ``library``'s runner of Items -> Copier; return its Items."""
    env: dict[str, str] = {}
    for name in ("ITEMS", "COPIER"):
        database = new_database(kind, plan, fresh)
        for key, value in database_env(kind, library, database).items():
            env[f"{name}_{key}" if key != "PERSISTENCE_MODULE" else key] = value
    if library == "esox":
        from esox.system import SingleThreadedRunner

        runner: Any = SingleThreadedRunner(models.system, env=env)
        runner.start()
        fresh.on_release(runner.stop)
        return runner.get(models.Items)
    from eventsourcing.system import SingleThreadedRunner as EsRunner

    from esox.bench import es_models

    runner = EsRunner(es_models.system, env=env)
    runner.start()
    fresh.on_release(runner.stop)
    return runner.get(es_models.Items)
