"""The cargo shipping domain model, after the DDD sample application (Evans).

A cargo is booked from an origin to a destination with an arrival deadline,
assigned a route (an itinerary of legs, each on a voyage), and then handled
(received, loaded, unloaded, claimed). Its delivery status (transport status,
routing status, misdirection, next expected activity, estimated time of
arrival) follows from its events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple
from uuid import UUID

from esox import Aggregate
from esox.domain import EventSourcingError

__all__ = [
    "TRANSFER_TIME",
    "VOYAGES",
    "Cargo",
    "CargoShippingError",
    "ExpectedActivity",
    "HandlingActivity",
    "HandlingEventError",
    "Itinerary",
    "Leg",
    "Location",
    "RoutingError",
    "RoutingStatus",
    "TransportStatus",
    "UnknownLocationError",
    "UnknownVoyageError",
    "Voyage",
    "find_routes",
]


class CargoShippingError(EventSourcingError):
    """Base class of the cargo shipping example's errors."""


class UnknownLocationError(CargoShippingError, ValueError):
    """A location code that is not one of the shipping locations."""


class UnknownVoyageError(CargoShippingError, ValueError):
    """A voyage number that is not in the timetable."""


class RoutingError(CargoShippingError):
    """A route that can't be assigned, or a cargo that can't be routed now."""


class HandlingEventError(CargoShippingError):
    """A handling event that contradicts where the cargo physically is."""


class Location(Enum):
    """A shipping location, valued by its UN/LOCODE.

    ``Location("CNHKG")`` and ``Location("HONGKONG")`` are both Hongkong;
    anything else raises ``UnknownLocationError``.
    """

    CHICAGO = "USCHI"
    DALLAS = "USDAL"
    GOTHENBURG = "SEGOT"
    HAMBURG = "DEHAM"
    HANGZHOU = "CNHGH"
    HELSINKI = "FIHEL"
    HONGKONG = "CNHKG"
    MELBOURNE = "AUMEL"
    NEWYORK = "USNYC"
    ROTTERDAM = "NLRTM"
    SHANGHAI = "CNSHA"
    STOCKHOLM = "SESTO"
    TOKYO = "JNTKO"

    @classmethod
    def _missing_(cls, value: object) -> Location:
        if isinstance(value, str) and value in cls.__members__:
            return cls.__members__[value]
        codes = ", ".join(sorted(location.value for location in cls))
        msg = f"Unknown location {value!r}: expected a UN/LOCODE, one of {codes}"
        raise UnknownLocationError(msg)

    @property
    def code(self) -> str:
        """The UN/LOCODE, e.g. ``"CNHKG"``."""
        return str(self.value)


class HandlingActivity(Enum):
    """What was done with a cargo at a location."""

    RECEIVE = "RECEIVE"
    LOAD = "LOAD"
    UNLOAD = "UNLOAD"
    CLAIM = "CLAIM"


class TransportStatus(Enum):
    """Where the cargo is, physically (follows from its last handling event)."""

    NOT_RECEIVED = "NOT_RECEIVED"
    IN_PORT = "IN_PORT"
    ONBOARD_CARRIER = "ONBOARD_CARRIER"
    CLAIMED = "CLAIMED"


class RoutingStatus(Enum):
    """Whether the cargo's route takes it to its destination by its deadline."""

    NOT_ROUTED = "NOT_ROUTED"
    ROUTED = "ROUTED"
    MISROUTED = "MISROUTED"


class ExpectedActivity(NamedTuple):
    """The handling activity a cargo on track should see next."""

    activity: HandlingActivity
    location: Location
    voyage_number: str | None = None


@dataclass(frozen=True)
class Leg:
    """One voyage of a route: loaded at one location, unloaded at another."""

    voyage_number: str
    load_location: Location
    unload_location: Location
    load_time: datetime
    unload_time: datetime


@dataclass(frozen=True)
class Itinerary:
    """A route: legs that each start where the one before ended."""

    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        if not self.legs:
            msg = "An itinerary needs at least one leg"
            raise RoutingError(msg)
        for before, after in zip(self.legs, self.legs[1:], strict=False):
            if before.unload_location is not after.load_location:
                msg = (
                    f"Leg on voyage {after.voyage_number} loads at "
                    f"{after.load_location.code}, not at "
                    f"{before.unload_location.code} where the leg before ends"
                )
                raise RoutingError(msg)

    @property
    def origin(self) -> Location:
        """Where the first leg loads."""
        return self.legs[0].load_location

    @property
    def destination(self) -> Location:
        """Where the last leg unloads."""
        return self.legs[-1].unload_location

    @property
    def final_arrival_time(self) -> datetime:
        """When the last leg unloads."""
        return self.legs[-1].unload_time

    def is_expected(
        self, activity: HandlingActivity, location: Location, voyage_number: str | None
    ) -> bool:
        """Whether a cargo following this itinerary would be handled like this."""
        if activity is HandlingActivity.RECEIVE:
            return location is self.origin
        if activity is HandlingActivity.CLAIM:
            return location is self.destination
        if activity is HandlingActivity.LOAD:
            return any(
                leg.load_location is location and leg.voyage_number == voyage_number
                for leg in self.legs
            )
        return any(
            leg.unload_location is location and leg.voyage_number == voyage_number
            for leg in self.legs
        )


class Cargo(Aggregate):
    """A cargo, tracked from booking to claim. Its id is its tracking id."""

    if TYPE_CHECKING:  # annotations in the class body would make it a dataclass
        _origin: Location
        _destination: Location
        _arrival_deadline: datetime
        _route: Itinerary | None
        _last_activity: HandlingActivity | None
        _last_known_location: Location | None
        _current_voyage_number: str | None
        _is_misdirected: bool

    class BookingStarted(Aggregate.Created):
        """A cargo was booked."""

        origin: Location
        destination: Location
        arrival_deadline: datetime

        def apply(self, cargo: Cargo) -> None:
            cargo._origin = self.origin
            cargo._destination = self.destination
            cargo._arrival_deadline = self.arrival_deadline
            cargo._route = None
            cargo._last_activity = None
            cargo._last_known_location = None
            cargo._current_voyage_number = None
            cargo._is_misdirected = False

    class DestinationChanged(Aggregate.Event):
        """The customer changed the cargo's destination."""

        destination: Location

        def apply(self, cargo: Cargo) -> None:
            cargo._destination = self.destination

    class RouteAssigned(Aggregate.Event):
        """The cargo was given a route (a new route puts it back on track)."""

        route: Itinerary

        def apply(self, cargo: Cargo) -> None:
            cargo._route = self.route
            cargo._is_misdirected = False

    class HandlingEventRegistered(Aggregate.Event):
        """The cargo was received, loaded, unloaded or claimed somewhere."""

        handling_activity: HandlingActivity
        location: Location
        voyage_number: str | None

        def apply(self, cargo: Cargo) -> None:
            cargo._last_activity = self.handling_activity
            cargo._last_known_location = self.location
            if self.handling_activity is HandlingActivity.LOAD:
                cargo._current_voyage_number = self.voyage_number
            else:
                cargo._current_voyage_number = None
            route = cargo._route
            cargo._is_misdirected = route is not None and not route.is_expected(
                self.handling_activity, self.location, self.voyage_number
            )

    @classmethod
    def new_booking(
        cls, origin: Location, destination: Location, arrival_deadline: datetime
    ) -> Cargo:
        """Book a cargo from ``origin`` to ``destination`` by ``arrival_deadline``."""
        if origin is destination:
            msg = f"Origin and destination are both {origin.code}"
            raise RoutingError(msg)
        _check_aware(arrival_deadline)
        return cls._create(
            cls.BookingStarted,
            origin=origin,
            destination=destination,
            arrival_deadline=arrival_deadline,
        )

    @property
    def tracking_id(self) -> UUID:
        """The tracking id (the aggregate id)."""
        return self.id

    @property
    def origin(self) -> Location:
        """Where the cargo was booked from."""
        return self._origin

    @property
    def destination(self) -> Location:
        """Where the cargo is to be delivered."""
        return self._destination

    @property
    def arrival_deadline(self) -> datetime:
        """When the cargo must arrive by."""
        return self._arrival_deadline

    @property
    def route(self) -> Itinerary | None:
        """The assigned route, if any."""
        return self._route

    @property
    def last_known_location(self) -> Location | None:
        """Where the cargo was last handled (None before it is received)."""
        return self._last_known_location

    @property
    def current_voyage_number(self) -> str | None:
        """The voyage the cargo is on board (None when not on board)."""
        return self._current_voyage_number

    @property
    def is_misdirected(self) -> bool:
        """Whether the last handling event was not one its route expected."""
        return self._is_misdirected

    @property
    def transport_status(self) -> TransportStatus:
        """Not received, in port, on board a carrier, or claimed."""
        return _TRANSPORT_STATUS[self._last_activity]

    @property
    def routing_status(self) -> RoutingStatus:
        """Not routed, routed, or misrouted (the route misses the destination)."""
        route = self._route
        if route is None:
            return RoutingStatus.NOT_ROUTED
        if (
            route.destination is not self._destination
            or route.final_arrival_time > self._arrival_deadline
        ):
            return RoutingStatus.MISROUTED
        return RoutingStatus.ROUTED

    @property
    def is_on_track(self) -> bool:
        """Routed to its destination and handled as its route expects."""
        return self.routing_status is RoutingStatus.ROUTED and not self._is_misdirected

    @property
    def estimated_time_of_arrival(self) -> datetime | None:
        """When the route arrives, while the cargo is on track."""
        if self._route is None or not self.is_on_track:
            return None
        return self._route.final_arrival_time

    @property
    def is_unloaded_at_destination(self) -> bool:
        """Whether the cargo was last unloaded at its destination."""
        return (
            self._last_activity is HandlingActivity.UNLOAD
            and self._last_known_location is self._destination
        )

    @property
    def next_expected_activity(self) -> ExpectedActivity | None:
        """What should happen next, while the cargo is on track."""
        route = self._route
        if route is None or not self.is_on_track:
            return None
        status = self.transport_status
        location = self._last_known_location
        if status is TransportStatus.NOT_RECEIVED:
            return ExpectedActivity(HandlingActivity.RECEIVE, route.origin)
        if status is TransportStatus.ONBOARD_CARRIER:
            for leg in route.legs:
                if (
                    leg.voyage_number == self._current_voyage_number
                    and leg.load_location is location
                ):
                    return ExpectedActivity(
                        HandlingActivity.UNLOAD, leg.unload_location, leg.voyage_number
                    )
        elif status is TransportStatus.IN_PORT:
            assert location is not None
            if self.is_unloaded_at_destination:
                return ExpectedActivity(HandlingActivity.CLAIM, location)
            for leg in route.legs:
                if leg.load_location is location:
                    return ExpectedActivity(
                        HandlingActivity.LOAD, location, leg.voyage_number
                    )
        return None

    def route_origin(self) -> Location:
        """Where a new route must start: the origin, or the port the cargo is in."""
        status = self.transport_status
        if status is TransportStatus.NOT_RECEIVED:
            return self._origin
        if status is TransportStatus.IN_PORT:
            assert self._last_known_location is not None
            return self._last_known_location
        if status is TransportStatus.ONBOARD_CARRIER:
            msg = (
                f"Cargo {self.id} is on board voyage {self._current_voyage_number}: "
                "it can be rerouted once it is unloaded"
            )
        else:
            msg = f"Cargo {self.id} has been claimed: it can't be rerouted"
        raise RoutingError(msg)

    def change_destination(self, destination: Location) -> None:
        """Deliver the cargo somewhere else (its route may then be misrouted)."""
        if self.transport_status is TransportStatus.CLAIMED:
            msg = f"Cargo {self.id} has been claimed: its destination can't change"
            raise RoutingError(msg)
        if destination is self._destination:
            return
        self.trigger_event(self.DestinationChanged, destination=destination)

    def assign_route(self, route: Itinerary) -> None:
        """Assign a route that satisfies the cargo's route specification.

        It must start where the cargo is (its origin before it is received),
        end at its destination, and arrive by its arrival deadline.
        """
        start = self.route_origin()
        if route.origin is not start:
            msg = (
                f"Route starts at {route.origin.code}, but the cargo is at {start.code}"
            )
            raise RoutingError(msg)
        if route.destination is not self._destination:
            msg = (
                f"Route ends at {route.destination.code}, not at the cargo's "
                f"destination {self._destination.code}"
            )
            raise RoutingError(msg)
        if route.final_arrival_time > self._arrival_deadline:
            msg = (
                f"Route arrives at {route.final_arrival_time.isoformat()}, after "
                f"the arrival deadline {self._arrival_deadline.isoformat()}"
            )
            raise RoutingError(msg)
        self.trigger_event(self.RouteAssigned, route=route)

    def register_handling_event(
        self,
        handling_activity: HandlingActivity,
        location: Location,
        voyage_number: str | None = None,
    ) -> None:
        """Record that the cargo was handled (misdirection is detected, not refused).

        Raises ``HandlingEventError`` if the event contradicts where the cargo
        physically is (loaded twice, unloaded from a voyage it isn't on...).
        """
        self._check_handling(handling_activity, location, voyage_number)
        self.trigger_event(
            self.HandlingEventRegistered,
            handling_activity=handling_activity,
            location=location,
            voyage_number=voyage_number,
        )

    def _check_handling(
        self, activity: HandlingActivity, location: Location, voyage_number: str | None
    ) -> None:
        status = self.transport_status
        needs_voyage = activity in (HandlingActivity.LOAD, HandlingActivity.UNLOAD)
        problem = ""
        if needs_voyage and not voyage_number:
            problem = "needs a voyage number"
        elif not needs_voyage and voyage_number:
            problem = "takes no voyage number"
        elif status is TransportStatus.CLAIMED:
            problem = "can't happen: the cargo has been claimed"
        elif activity is HandlingActivity.RECEIVE:
            if status is not TransportStatus.NOT_RECEIVED:
                problem = "can't happen: the cargo was received already"
        elif activity is HandlingActivity.UNLOAD:
            if voyage_number != self._current_voyage_number:
                problem = f"can't happen: the cargo is not on board {voyage_number}"
        elif status is not TransportStatus.IN_PORT:
            problem = (
                f"can't happen: the cargo is {status.value.lower().replace('_', ' ')}"
            )
        elif location is not self._last_known_location:
            assert self._last_known_location is not None
            problem = f"can't happen: the cargo is in {self._last_known_location.code}"
        if problem:
            msg = f"{activity.value} of cargo {self.id} at {location.code} {problem}"
            raise HandlingEventError(msg)


_TRANSPORT_STATUS = {
    None: TransportStatus.NOT_RECEIVED,
    HandlingActivity.RECEIVE: TransportStatus.IN_PORT,
    HandlingActivity.LOAD: TransportStatus.ONBOARD_CARRIER,
    HandlingActivity.UNLOAD: TransportStatus.IN_PORT,
    HandlingActivity.CLAIM: TransportStatus.CLAIMED,
}


def _check_aware(when: datetime) -> None:
    if not isinstance(when, datetime) or when.utcoffset() is None:
        msg = f"Expected a timezone-aware datetime, not {when!r}"
        raise ValueError(msg)


# The timetable ------------------------------------------------------------

TRANSFER_TIME = timedelta(days=1)
"""How long a cargo waits in port between two legs of a route."""


@dataclass(frozen=True)
class Voyage:
    """A voyage number and the ports it calls at, with the days between them.

    The example's voyages sail every day: a ship leaves each of the voyage's
    ports at midnight UTC daily, so a cargo ready at a port leaves at the
    next midnight.
    """

    number: str
    ports: tuple[Location, ...]
    sailing_days: tuple[int, ...]

    def __post_init__(self) -> None:
        assert len(self.sailing_days) == len(self.ports) - 1
        assert len(set(self.ports)) == len(self.ports)

    def legs_from(self, location: Location, ready_at: datetime) -> Iterator[Leg]:
        """Legs from ``location`` to each later port, leaving after ``ready_at``."""
        if location not in self.ports:
            return
        start = self.ports.index(location)
        load_time = _next_midnight(ready_at)
        days = 0
        for port, sailing in zip(
            self.ports[start + 1 :], self.sailing_days[start:], strict=True
        ):
            days += sailing
            yield Leg(
                voyage_number=self.number,
                load_location=location,
                unload_location=port,
                load_time=load_time,
                unload_time=load_time + timedelta(days=days),
            )


def _next_midnight(when: datetime) -> datetime:
    _check_aware(when)
    when = when.astimezone(UTC)
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == when else midnight + timedelta(days=1)


_L = Location
VOYAGES: dict[str, Voyage] = {
    voyage.number: voyage
    for voyage in (
        Voyage("V1", (_L.HONGKONG, _L.TOKYO, _L.NEWYORK), (3, 17)),
        Voyage("V2", (_L.NEWYORK, _L.HAMBURG, _L.STOCKHOLM), (8, 3)),
        Voyage(
            "V3",
            (_L.SHANGHAI, _L.HONGKONG, _L.ROTTERDAM, _L.HAMBURG, _L.GOTHENBURG),
            (2, 30, 1, 2),
        ),
        Voyage("V4", (_L.HANGZHOU, _L.SHANGHAI, _L.TOKYO), (1, 3)),
        Voyage("V5", (_L.HAMBURG, _L.STOCKHOLM, _L.HELSINKI), (2, 1)),
        Voyage("V6", (_L.NEWYORK, _L.CHICAGO, _L.DALLAS), (2, 2)),
    )
}
"""The example's timetable, by voyage number (Melbourne is not served)."""


def find_routes(
    origin: Location,
    destination: Location,
    *,
    ready_at: datetime,
    arrival_deadline: datetime | None = None,
    max_legs: int = 3,
) -> list[Itinerary]:
    """Routes from ``origin`` to ``destination`` for a cargo ready at ``ready_at``.

    Earliest arrival first (then fewest legs). A route never calls at a
    location twice, and changes voyage at each transfer.
    """
    routes: list[Itinerary] = []

    def extend(legs: tuple[Leg, ...], at: Location, ready: datetime) -> None:
        visited = {origin, *(leg.unload_location for leg in legs)}
        for voyage in VOYAGES.values():
            if legs and legs[-1].voyage_number == voyage.number:
                continue
            for leg in voyage.legs_from(at, ready):
                if leg.unload_location in visited or (
                    arrival_deadline is not None and leg.unload_time > arrival_deadline
                ):
                    continue
                if leg.unload_location is destination:
                    routes.append(Itinerary((*legs, leg)))
                elif len(legs) + 1 < max_legs:
                    extend(
                        (*legs, leg),
                        leg.unload_location,
                        leg.unload_time + TRANSFER_TIME,
                    )

    extend((), origin, ready_at)
    routes.sort(key=lambda route: (route.final_arrival_time, len(route.legs)))
    return routes
