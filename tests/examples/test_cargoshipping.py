"""The cargo shipping example: the DDD sample's scenarios, on each persistence."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from esox.application import AggregateNotFoundError, project_aggregate
from tests.examples.cargoshipping.application import (
    BookingApplication,
    HandlingActivityAsName,
    ItineraryAsDict,
    LegAsDict,
    LocationAsCode,
)
from tests.examples.cargoshipping.domainmodel import (
    Cargo,
    ExpectedActivity,
    HandlingActivity,
    HandlingEventError,
    Itinerary,
    Leg,
    Location,
    RoutingError,
    RoutingStatus,
    TransportStatus,
    UnknownLocationError,
    UnknownVoyageError,
    find_routes,
)
from tests.examples.cargoshipping.interface import (
    BookingService,
    CargoDetails,
    ItineraryDetails,
)
from tests.persistence_envs import persistence_env

Step = Callable[[str], None]


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    with persistence_env(request.param, tmp_path, "cargoshipping") as env:
        yield env


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[BookingApplication]:
    with BookingApplication(env=env) as application:
        yield application


@pytest.fixture
def service(app: BookingApplication) -> BookingService:
    return BookingService(app)


def in_days(days: int) -> datetime:
    return datetime.now(tz=UTC) + timedelta(days=days)


def voyages(route: Any) -> list[str]:
    return [leg["voyage_number"] for leg in route["legs"]]


def check(
    details: CargoDetails,
    *,
    transport: str,
    routing: str,
    next_expected: tuple[str, str, str | None] | None,
    last_known: str | None,
    voyage: str | None = None,
    misdirected: bool = False,
    unloaded_at_destination: bool = False,
) -> None:
    """Assert a cargo's delivery status, as the DDD sample's scenario test does."""
    expected = details["next_expected_activity"]
    assert details["transport_status"] == transport
    assert details["routing_status"] == routing
    assert details["is_misdirected"] is misdirected
    assert details["last_known_location"] == last_known
    assert details["current_voyage_number"] == voyage
    assert details["is_unloaded_at_destination"] is unloaded_at_destination
    if next_expected is None:
        assert expected is None
    else:
        assert expected is not None
        activity = (
            expected["activity"],
            expected["location"],
            expected["voyage_number"],
        )
        assert activity == next_expected
    on_track = routing == "ROUTED" and not misdirected
    assert (details["estimated_time_of_arrival"] is not None) is on_track
    if on_track:
        assert details["route"] is not None
        eta = details["route"]["legs"][-1]["unload_time"]
        assert details["estimated_time_of_arrival"] == eta


Handling = tuple[str, str | None, str]
"""A handling event: its activity, voyage number and location, as strings."""


def no_step(tracking_id: str) -> None:
    """Nothing to do between the steps of a scenario."""


@dataclasses.dataclass
class TrackedCargo:
    """A booked cargo, handled and checked through the booking service."""

    service: BookingService
    tracking_id: str
    after_each_step: Step = no_step

    @classmethod
    def book(cls, service: BookingService) -> TrackedCargo:
        """Book a cargo from Hongkong to Stockholm, due in 40 days."""
        return cls(service, service.book_new_cargo("CNHKG", "SESTO", in_days(40)))

    def assign_preferred_route(self) -> ItineraryDetails:
        """Assign the first route on offer (the earliest arrival), and return it."""
        route = self.service.request_possible_routes_for_cargo(self.tracking_id)[0]
        self.service.assign_route(self.tracking_id, route)
        return route

    def handle(self, *events: Handling) -> None:
        """Register handling events, in order."""
        for activity, voyage, location in events:
            self.service.register_handling_event(
                self.tracking_id, voyage, location, activity
            )

    def check_delivery(self, *, routing: str = "ROUTED", **expected: Any) -> None:
        """Check the cargo's delivery status (see ``check``), which ends a step."""
        details = self.service.get_cargo_details(self.tracking_id)
        check(details, routing=routing, **expected)
        self.after_each_step(self.tracking_id)


def hongkong_to_stockholm(service: BookingService, after_each_step: Step) -> str:
    """The DDD sample's cargo lifecycle, misdirection and rerouting included."""
    deadline = in_days(40)
    tracking_id = service.book_new_cargo("CNHKG", "SESTO", deadline)
    details = service.get_cargo_details(tracking_id)
    assert details["origin"] == "CNHKG" and details["destination"] == "SESTO"
    assert details["arrival_deadline"] == deadline.isoformat()
    assert details["route"] is None
    check(
        details,
        transport="NOT_RECEIVED",
        routing="NOT_ROUTED",
        next_expected=None,
        last_known=None,
    )
    after_each_step(tracking_id)

    # Routing: the routes on offer all satisfy the route specification.
    routes = service.request_possible_routes_for_cargo(tracking_id)
    assert len(routes) >= 2
    for route in routes:
        assert route["origin"] == "CNHKG" and route["destination"] == "SESTO"
        assert datetime.fromisoformat(route["legs"][-1]["unload_time"]) <= deadline
    route = routes[0]  # the preferred one: earliest arrival
    assert voyages(route) == ["V1", "V2"]
    assert [leg["unload_location"] for leg in route["legs"]] == ["USNYC", "SESTO"]
    service.assign_route(tracking_id, route)
    details = service.get_cargo_details(tracking_id)
    assert details["route"] == route
    check(
        details,
        transport="NOT_RECEIVED",
        routing="ROUTED",
        next_expected=("RECEIVE", "CNHKG", None),
        last_known=None,
    )
    after_each_step(tracking_id)

    cargo = TrackedCargo(service, tracking_id, after_each_step)
    # Received in Hongkong, loaded there on V1.
    cargo.handle(("RECEIVE", None, "CNHKG"))
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "CNHKG", "V1"), last_known="CNHKG"
    )
    cargo.handle(("LOAD", "V1", "CNHKG"))
    cargo.check_delivery(
        transport="ONBOARD_CARRIER",
        next_expected=("UNLOAD", "USNYC", "V1"),
        last_known="CNHKG",
        voyage="V1",
    )

    # Unloaded in New York, as the route says: not misdirected.
    cargo.handle(("UNLOAD", "V1", "USNYC"))
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "USNYC", "V2"), last_known="USNYC"
    )
    cargo.handle(("LOAD", "V2", "USNYC"))
    cargo.check_delivery(
        transport="ONBOARD_CARRIER",
        next_expected=("UNLOAD", "SESTO", "V2"),
        last_known="USNYC",
        voyage="V2",
    )

    # Unloaded in Hamburg, where V2 calls on its way: misdirected.
    cargo.handle(("UNLOAD", "V2", "DEHAM"))
    cargo.check_delivery(
        transport="IN_PORT", next_expected=None, last_known="DEHAM", misdirected=True
    )

    # Rerouted from Hamburg: back on track.
    routes = service.request_possible_routes_for_cargo(tracking_id)
    assert {route["origin"] for route in routes} == {"DEHAM"}
    assert [voyages(route) for route in routes] == [["V5"], ["V2"]]
    service.assign_route(tracking_id, routes[0])
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "DEHAM", "V5"), last_known="DEHAM"
    )

    cargo.handle(("LOAD", "V5", "DEHAM"))
    cargo.check_delivery(
        transport="ONBOARD_CARRIER",
        next_expected=("UNLOAD", "SESTO", "V5"),
        last_known="DEHAM",
        voyage="V5",
    )
    cargo.handle(("UNLOAD", "V5", "SESTO"))
    cargo.check_delivery(
        transport="IN_PORT",
        next_expected=("CLAIM", "SESTO", None),
        last_known="SESTO",
        unloaded_at_destination=True,
    )

    # Claimed in Stockholm.
    cargo.handle(("CLAIM", None, "SESTO"))
    cargo.check_delivery(transport="CLAIMED", next_expected=None, last_known="SESTO")
    return tracking_id


def test_hongkong_to_stockholm(service: BookingService, app: BookingApplication):
    tracking_id = hongkong_to_stockholm(service, no_step)
    cargo = app.get_cargo(UUID(tracking_id))
    assert cargo.version == 11
    assert cargo.transport_status is TransportStatus.CLAIMED
    assert cargo.last_known_location is Location.STOCKHOLM
    assert cargo.route is not None
    assert [leg.voyage_number for leg in cargo.route.legs] == ["V5"]
    events = app.events.get(cargo.id)
    assert [type(e).__name__ for e in events].count("HandlingEventRegistered") == 8


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_hongkong_to_stockholm_survives_reopening(kind: str, tmp_path: Path):
    with persistence_env(kind, tmp_path, "cargoshipping") as env:
        with BookingApplication(env=env) as app:
            tracking_id = hongkong_to_stockholm(BookingService(app), no_step)
            before = app.get_cargo(UUID(tracking_id))
        with BookingApplication(env=env) as reopened:
            after = reopened.get_cargo(UUID(tracking_id))
    assert after == before
    assert after.route is not None and isinstance(after.route.legs[0], Leg)


def test_hongkong_to_stockholm_from_snapshots(env: dict[str, str]):
    env = {**env, "IS_SNAPSHOTTING_ENABLED": "y"}
    with BookingApplication(env=env) as app:

        def snapshot_and_compare(tracking_id: str) -> None:
            cargo_id = UUID(tracking_id)
            app.take_snapshot(cargo_id)
            assert app.snapshots is not None
            (snapshot,) = app.snapshots.get(cargo_id, desc=True, limit=1)
            from_snapshot = app.repository.get(cargo_id)
            from_events = project_aggregate(None, app.events.get(cargo_id))
            assert from_snapshot == from_events
            assert from_snapshot.version == snapshot.originator_version
            assert isinstance(snapshot.state["_origin"], Location)
            route = snapshot.state["_route"]
            assert route is None or isinstance(route, Itinerary)

        tracking_id = hongkong_to_stockholm(BookingService(app), snapshot_and_compare)
        assert app.get_cargo(UUID(tracking_id)).version == 11


def test_changing_destination_misroutes_until_a_new_route_is_assigned(
    service: BookingService,
):
    cargo = TrackedCargo.book(service)
    tracking_id = cargo.tracking_id
    cargo.assign_preferred_route()
    cargo.handle(
        ("RECEIVE", None, "CNHKG"), ("LOAD", "V1", "CNHKG"), ("UNLOAD", "V1", "USNYC")
    )

    service.change_destination(tracking_id, "FIHEL")
    details = service.get_cargo_details(tracking_id)
    assert details["destination"] == "FIHEL"
    check(
        details,
        transport="IN_PORT",
        routing="MISROUTED",
        next_expected=None,
        last_known="USNYC",
    )
    # Changing it back makes the old route good again.
    service.change_destination(tracking_id, "SESTO")
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "USNYC", "V2"), last_known="USNYC"
    )
    service.change_destination(tracking_id, "FIHEL")

    routes = service.request_possible_routes_for_cargo(tracking_id)
    assert [voyages(route) for route in routes] == [["V2", "V5"], ["V2", "V5"]]
    assert routes[0]["legs"][0]["unload_location"] == "DEHAM"
    service.assign_route(tracking_id, routes[0])
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "USNYC", "V2"), last_known="USNYC"
    )
    # Unloading from V2 in Hamburg is now what the route expects.
    cargo.handle(("LOAD", "V2", "USNYC"), ("UNLOAD", "V2", "DEHAM"))
    cargo.check_delivery(
        transport="IN_PORT", next_expected=("LOAD", "DEHAM", "V5"), last_known="DEHAM"
    )
    cargo.handle(
        ("LOAD", "V5", "DEHAM"), ("UNLOAD", "V5", "FIHEL"), ("CLAIM", None, "FIHEL")
    )
    cargo.check_delivery(transport="CLAIMED", next_expected=None, last_known="FIHEL")
    with pytest.raises(RoutingError, match="claimed"):
        service.change_destination(tracking_id, "SESTO")


def test_cargo_received_where_the_route_doesnt_start_is_misdirected(
    service: BookingService,
):
    cargo = TrackedCargo.book(service)
    cargo.handle(("RECEIVE", None, "CNSHA"))
    # Not routed yet: nothing to be misdirected from.
    cargo.check_delivery(
        transport="IN_PORT",
        routing="NOT_ROUTED",
        next_expected=None,
        last_known="CNSHA",
    )
    # A route must start where the cargo is.
    routes = service.request_possible_routes_for_cargo(cargo.tracking_id)
    assert routes and {route["origin"] for route in routes} == {"CNSHA"}
    assert voyages(routes[0]) == ["V4", "V1", "V2"]

    other = TrackedCargo.book(service)
    other.assign_preferred_route()
    other.handle(("RECEIVE", None, "CNSHA"))
    other.check_delivery(
        transport="IN_PORT", next_expected=None, last_known="CNSHA", misdirected=True
    )


def test_value_objects_round_trip_through_the_mapper_as_their_own_types(
    app: BookingApplication,
):
    cargo = Cargo.new_booking(Location.HONGKONG, Location.STOCKHOLM, in_days(40))
    (route, *_) = find_routes(
        Location.HONGKONG, Location.STOCKHOLM, ready_at=in_days(0)
    )
    cargo.assign_route(route)
    cargo.register_handling_event(HandlingActivity.RECEIVE, Location.HONGKONG)
    events = cargo.collect_events()
    stored = app.mapper.to_stored_events(events)
    assert app.mapper.to_domain_events(stored) == list(events)
    booked, assigned, received = app.mapper.to_domain_events(stored)
    assert booked.origin is Location.HONGKONG
    assert isinstance(assigned.route, Itinerary)
    assert isinstance(assigned.route.legs, tuple)
    assert all(isinstance(leg, Leg) for leg in assigned.route.legs)
    assert assigned.route.legs[0].load_location is Location.HONGKONG
    assert received.handling_activity is HandlingActivity.RECEIVE
    # Stored the way eventsourcing would store them: {"_type_": ..., "_data_": ...}.
    encoded = app.mapper.encode(assigned.route)
    for name in ("itinerary", "leg", "location", "datetime_iso"):
        assert f'"_type_":"{name}"'.encode() in encoded
    assert app.mapper.encode(Location.HONGKONG) == (
        b'{"_type_":"location","_data_":"CNHKG"}'
    )


def test_value_objects_are_read_by_eventsourcing_too():
    eventsourcing_persistence = pytest.importorskip("eventsourcing.persistence")
    theirs = eventsourcing_persistence.JSONTranscoder()
    for transcoding in (
        eventsourcing_persistence.DatetimeAsISO(),
        LocationAsCode(),
        HandlingActivityAsName(),
        LegAsDict(),
        ItineraryAsDict(),
    ):
        theirs.register(transcoding)
    (route, *_) = find_routes(
        Location.HONGKONG, Location.STOCKHOLM, ready_at=in_days(0)
    )
    with BookingApplication(env={"PERSISTENCE_MODULE": "esox.memory"}) as app:
        ours = app.mapper
        state = {"route": route, "activity": HandlingActivity.LOAD}
        assert theirs.decode(ours.encode(state)) == state
        assert ours.decode(theirs.encode(state)) == state


def test_routes_respect_the_arrival_deadline(app: BookingApplication):
    tight = app.book_new_cargo(Location.HONGKONG, Location.STOCKHOLM, in_days(20))
    assert app.request_possible_routes_for_cargo(tight) == []
    roomy = app.book_new_cargo(Location.HONGKONG, Location.STOCKHOLM, in_days(40))
    route = app.request_possible_routes_for_cargo(roomy)[0]
    with pytest.raises(RoutingError, match="after the arrival deadline"):
        app.assign_route(tight, route)
    assert app.get_cargo(tight).routing_status is RoutingStatus.NOT_ROUTED


def test_a_route_that_doesnt_satisfy_the_route_specification_is_refused(
    app: BookingApplication,
):
    cargo_id = app.book_new_cargo(Location.HONGKONG, Location.STOCKHOLM, in_days(40))
    to_helsinki = find_routes(
        Location.HONGKONG, Location.HELSINKI, ready_at=in_days(0)
    )[0]
    with pytest.raises(RoutingError, match="not at the cargo's destination SESTO"):
        app.assign_route(cargo_id, to_helsinki)
    from_shanghai = find_routes(
        Location.SHANGHAI, Location.STOCKHOLM, ready_at=in_days(0)
    )[0]
    with pytest.raises(RoutingError, match="starts at CNSHA, but the cargo is at"):
        app.assign_route(cargo_id, from_shanghai)
    unknown_voyage = dataclasses.replace(to_helsinki.legs[0], voyage_number="V99")
    with pytest.raises(UnknownVoyageError, match="V99"):
        app.assign_route(cargo_id, Itinerary((unknown_voyage,)))
    with pytest.raises(RoutingError, match="at least one leg"):
        Itinerary(())
    assert app.get_cargo(cargo_id).version == 1


def test_disconnected_legs_are_not_an_itinerary(service: BookingService):
    tracking_id = TrackedCargo.book(service).tracking_id
    route = service.request_possible_routes_for_cargo(tracking_id)[0]
    route["legs"][1]["load_location"] = "DEHAM"
    with pytest.raises(RoutingError, match="loads at DEHAM, not at USNYC"):
        service.assign_route(tracking_id, route)


def test_a_cargo_on_board_cant_be_rerouted(service: BookingService):
    cargo = TrackedCargo.book(service)
    route = cargo.assign_preferred_route()
    cargo.handle(("RECEIVE", None, "CNHKG"), ("LOAD", "V1", "CNHKG"))
    with pytest.raises(RoutingError, match="on board voyage V1"):
        service.request_possible_routes_for_cargo(cargo.tracking_id)
    with pytest.raises(RoutingError, match="on board voyage V1"):
        service.assign_route(cargo.tracking_id, route)


def test_unknown_location_codes_are_refused(service: BookingService):
    with pytest.raises(UnknownLocationError, match=r"'XXXXX'.*CNHKG"):
        service.book_new_cargo("XXXXX", "SESTO", in_days(40))
    tracking_id = service.book_new_cargo("CNHKG", "SESTO", in_days(40))
    with pytest.raises(UnknownLocationError, match="'Hongkong'"):
        service.change_destination(tracking_id, "Hongkong")
    with pytest.raises(ValueError, match="'XXXXX'"):
        service.register_handling_event(tracking_id, None, "XXXXX", "RECEIVE")
    # Enum names are accepted as well as UN/LOCODEs.
    assert Location("HONGKONG") is Location("CNHKG") is Location.HONGKONG
    assert service.get_cargo_details(tracking_id)["destination"] == "SESTO"


def test_unknown_cargo_is_not_found(service: BookingService, app: BookingApplication):
    unknown = uuid4()
    with pytest.raises(AggregateNotFoundError):
        app.get_cargo(unknown)
    with pytest.raises(AggregateNotFoundError):
        app.register_handling_event(
            unknown, None, Location.HONGKONG, HandlingActivity.RECEIVE
        )
    with pytest.raises(AggregateNotFoundError):
        service.register_handling_event(str(unknown), None, "CNHKG", "RECEIVE")
    with pytest.raises(AggregateNotFoundError):
        service.request_possible_routes_for_cargo(str(unknown))
    with pytest.raises(ValueError, match="Not a tracking id: 'ABC123'"):
        service.get_cargo_details("ABC123")


def test_bookings_are_checked(service: BookingService):
    with pytest.raises(RoutingError, match="both CNHKG"):
        service.book_new_cargo("CNHKG", "HONGKONG", in_days(40))
    with pytest.raises(ValueError, match="timezone-aware"):
        service.book_new_cargo("CNHKG", "SESTO", datetime(2030, 1, 1))
    deadline = "2030-01-01T00:00:00+00:00"
    tracking_id = service.book_new_cargo("CNHKG", "SESTO", deadline)
    assert service.get_cargo_details(tracking_id)["arrival_deadline"] == deadline
    codes = [location["code"] for location in service.list_shipping_locations()]
    assert "CNHKG" in codes and "SESTO" in codes and len(codes) == len(Location)


@pytest.mark.parametrize(
    ("steps", "voyage", "location", "activity", "error"),
    [
        ([], None, "CNHKG", "LOAD", "LOAD of cargo .* needs a voyage number"),
        ([], "V1", "CNHKG", "RECEIVE", "takes no voyage number"),
        ([], "V1", "CNHKG", "LOAD", "the cargo is not received"),
        ([("RECEIVE", None, "CNHKG")], None, "CNHKG", "RECEIVE", "received already"),
        ([("RECEIVE", None, "CNHKG")], "V1", "USNYC", "LOAD", "is in CNHKG"),
        ([("RECEIVE", None, "CNHKG")], "V1", "USNYC", "UNLOAD", "not on board V1"),
        ([("RECEIVE", None, "CNHKG")], None, "SESTO", "CLAIM", "is in CNHKG"),
        (
            [("RECEIVE", None, "CNHKG"), ("LOAD", "V1", "CNHKG")],
            "V2",
            "USNYC",
            "UNLOAD",
            "not on board V2",
        ),
        (
            [("RECEIVE", None, "CNHKG"), ("LOAD", "V1", "CNHKG")],
            None,
            "CNHKG",
            "CLAIM",
            "the cargo is onboard carrier",
        ),
        (
            [("RECEIVE", None, "CNHKG"), ("CLAIM", None, "CNHKG")],
            None,
            "CNHKG",
            "RECEIVE",
            "has been claimed",
        ),
    ],
)
def test_handling_events_that_contradict_the_cargo_are_refused(
    app: BookingApplication,
    steps: list[Handling],
    voyage: str | None,
    location: str,
    activity: str,
    error: str,
):
    cargo = TrackedCargo.book(BookingService(app))
    cargo.handle(*steps)
    with pytest.raises(HandlingEventError, match=error):
        cargo.handle((activity, voyage, location))
    assert app.get_cargo(UUID(cargo.tracking_id)).version == 1 + len(steps)


def test_unknown_voyages_and_activities_are_refused(service: BookingService):
    cargo = TrackedCargo.book(service)
    cargo.handle(("RECEIVE", None, "CNHKG"))
    with pytest.raises(UnknownVoyageError, match=r"'V99'.*V1, V2"):
        cargo.handle(("LOAD", "V99", "CNHKG"))
    with pytest.raises(ValueError, match="'SHIP': one of RECEIVE, LOAD"):
        cargo.handle(("SHIP", "V1", "CNHKG"))


def test_route_finding_over_the_timetable():
    ready = datetime(2025, 3, 1, 15, 30, tzinfo=UTC)
    routes = find_routes(Location.HONGKONG, Location.STOCKHOLM, ready_at=ready)
    assert [[leg.voyage_number for leg in r.legs] for r in routes] == [
        ["V1", "V2"],
        ["V1", "V2", "V5"],
        ["V3", "V5"],
        ["V3", "V2"],
    ]
    first = routes[0]
    # Ships leave at midnight UTC; transfers take a day.
    assert first.legs[0].load_time == datetime(2025, 3, 2, tzinfo=UTC)
    assert first.legs[0].unload_time == datetime(2025, 3, 22, tzinfo=UTC)
    assert first.legs[1].load_time == datetime(2025, 3, 23, tzinfo=UTC)
    assert first.final_arrival_time == datetime(2025, 4, 3, tzinfo=UTC)
    assert find_routes(Location.HONGKONG, Location.MELBOURNE, ready_at=ready) == []
    assert (
        find_routes(
            Location.HONGKONG,
            Location.STOCKHOLM,
            ready_at=ready,
            arrival_deadline=datetime(2025, 4, 3, tzinfo=UTC),
        )
        == routes[:2]
    )
    assert first.is_expected(HandlingActivity.UNLOAD, Location.NEWYORK, "V1")
    assert not first.is_expected(HandlingActivity.UNLOAD, Location.TOKYO, "V1")
    assert ExpectedActivity(HandlingActivity.CLAIM, Location.STOCKHOLM) == (
        HandlingActivity.CLAIM,
        Location.STOCKHOLM,
        None,
    )
