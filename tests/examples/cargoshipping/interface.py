"""The booking service: the application behind plain strings and dicts.

Like the DDD sample's booking facade, it is what a user interface or a web
API would call: locations are UN/LOCODE strings, tracking ids are strings,
times are ISO 8601 strings, and routes are dicts.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict
from uuid import UUID

from tests.examples.cargoshipping.application import BookingApplication
from tests.examples.cargoshipping.domainmodel import (
    Cargo,
    ExpectedActivity,
    HandlingActivity,
    Itinerary,
    Leg,
    Location,
)

__all__ = [
    "BookingService",
    "CargoDetails",
    "ExpectedActivityDetails",
    "ItineraryDetails",
    "LegDetails",
    "LocationDetails",
]


class LocationDetails(TypedDict):
    """A shipping location: its UN/LOCODE and name."""

    code: str
    name: str


class LegDetails(TypedDict):
    """One leg of a route."""

    voyage_number: str
    load_location: str
    unload_location: str
    load_time: str
    unload_time: str


class ItineraryDetails(TypedDict):
    """A route: where it starts and ends, and its legs."""

    origin: str
    destination: str
    legs: list[LegDetails]


class ExpectedActivityDetails(TypedDict):
    """The next expected handling activity."""

    activity: str
    location: str
    voyage_number: str | None


class CargoDetails(TypedDict):
    """Everything about a cargo's booking, route and delivery status."""

    tracking_id: str
    origin: str
    destination: str
    arrival_deadline: str
    transport_status: str
    routing_status: str
    is_misdirected: bool
    estimated_time_of_arrival: str | None
    next_expected_activity: ExpectedActivityDetails | None
    last_known_location: str | None
    current_voyage_number: str | None
    is_unloaded_at_destination: bool
    route: ItineraryDetails | None


class BookingService:
    """Books and tracks cargo through a ``BookingApplication``, with plain data."""

    def __init__(self, app: BookingApplication) -> None:
        self.app = app

    def list_shipping_locations(self) -> list[LocationDetails]:
        """Every location cargo can be booked from or to."""
        return [{"code": loc.code, "name": loc.name} for loc in Location]

    def book_new_cargo(
        self, origin: str, destination: str, arrival_deadline: datetime | str
    ) -> str:
        """Book a cargo; return its tracking id.

        ``arrival_deadline`` is an aware datetime or an ISO 8601 string with
        a UTC offset.
        """
        if isinstance(arrival_deadline, str):
            arrival_deadline = datetime.fromisoformat(arrival_deadline)
        tracking_id = self.app.book_new_cargo(
            Location(origin), Location(destination), arrival_deadline
        )
        return str(tracking_id)

    def get_cargo_details(self, tracking_id: str) -> CargoDetails:
        """The cargo's booking, route and delivery status."""
        cargo = self.app.get_cargo(_tracking_id(tracking_id))
        return _cargo_details(cargo)

    def change_destination(self, tracking_id: str, destination: str) -> None:
        """Deliver the cargo somewhere else."""
        self.app.change_destination(_tracking_id(tracking_id), Location(destination))

    def request_possible_routes_for_cargo(
        self, tracking_id: str
    ) -> list[ItineraryDetails]:
        """Routes that would take the cargo to its destination by its deadline."""
        routes = self.app.request_possible_routes_for_cargo(_tracking_id(tracking_id))
        return [_itinerary_details(route) for route in routes]

    def assign_route(self, tracking_id: str, route: ItineraryDetails) -> None:
        """Assign one of the routes that ``request_possible_routes_for_cargo`` gave."""
        itinerary = Itinerary(
            tuple(
                Leg(
                    voyage_number=leg["voyage_number"],
                    load_location=Location(leg["load_location"]),
                    unload_location=Location(leg["unload_location"]),
                    load_time=datetime.fromisoformat(leg["load_time"]),
                    unload_time=datetime.fromisoformat(leg["unload_time"]),
                )
                for leg in route["legs"]
            )
        )
        self.app.assign_route(_tracking_id(tracking_id), itinerary)

    def register_handling_event(
        self,
        tracking_id: str,
        voyage_number: str | None,
        location: str,
        handling_activity: str,
    ) -> None:
        """Record a handling event: RECEIVE, LOAD, UNLOAD or CLAIM."""
        try:
            activity = HandlingActivity[handling_activity]
        except KeyError:
            names = ", ".join(a.name for a in HandlingActivity)
            msg = f"Unknown handling activity {handling_activity!r}: one of {names}"
            raise ValueError(msg) from None
        self.app.register_handling_event(
            _tracking_id(tracking_id),
            voyage_number or None,
            Location(location),
            activity,
        )


def _tracking_id(tracking_id: str) -> UUID:
    try:
        return UUID(tracking_id)
    except (TypeError, ValueError):
        msg = f"Not a tracking id: {tracking_id!r}"
        raise ValueError(msg) from None


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _code(location: Location | None) -> str | None:
    return None if location is None else location.code


def _itinerary_details(itinerary: Itinerary) -> ItineraryDetails:
    return {
        "origin": itinerary.origin.code,
        "destination": itinerary.destination.code,
        "legs": [
            {
                "voyage_number": leg.voyage_number,
                "load_location": leg.load_location.code,
                "unload_location": leg.unload_location.code,
                "load_time": leg.load_time.isoformat(),
                "unload_time": leg.unload_time.isoformat(),
            }
            for leg in itinerary.legs
        ],
    }


def _expected_activity_details(
    expected: ExpectedActivity | None,
) -> ExpectedActivityDetails | None:
    if expected is None:
        return None
    return {
        "activity": expected.activity.name,
        "location": expected.location.code,
        "voyage_number": expected.voyage_number,
    }


def _cargo_details(cargo: Cargo) -> CargoDetails:
    return {
        "tracking_id": str(cargo.tracking_id),
        "origin": cargo.origin.code,
        "destination": cargo.destination.code,
        "arrival_deadline": cargo.arrival_deadline.isoformat(),
        "transport_status": cargo.transport_status.value,
        "routing_status": cargo.routing_status.value,
        "is_misdirected": cargo.is_misdirected,
        "estimated_time_of_arrival": _iso(cargo.estimated_time_of_arrival),
        "next_expected_activity": _expected_activity_details(
            cargo.next_expected_activity
        ),
        "last_known_location": _code(cargo.last_known_location),
        "current_voyage_number": cargo.current_voyage_number,
        "is_unloaded_at_destination": cargo.is_unloaded_at_destination,
        "route": None if cargo.route is None else _itinerary_details(cargo.route),
    }
