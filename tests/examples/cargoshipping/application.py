"""The booking application: books, routes and tracks cargo."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from esox import Application
from esox.domain import datetime_now_with_tzinfo
from esox.persistence import JSONTranscoder, Transcoding
from tests.examples.cargoshipping.domainmodel import (
    VOYAGES,
    Cargo,
    HandlingActivity,
    Itinerary,
    Leg,
    Location,
    UnknownVoyageError,
    find_routes,
)

__all__ = [
    "BookingApplication",
    "HandlingActivityAsName",
    "ItineraryAsDict",
    "LegAsDict",
    "LocationAsCode",
]


class LocationAsCode(Transcoding):
    """Stores a ``Location`` as its UN/LOCODE."""

    type = Location
    name = "location"

    def encode(self, obj: Location) -> str:
        """Return the UN/LOCODE."""
        return obj.code

    def decode(self, data: str) -> Location:
        """Return the location with this UN/LOCODE."""
        return Location(data)


class HandlingActivityAsName(Transcoding):
    """Stores a ``HandlingActivity`` as its name."""

    type = HandlingActivity
    name = "handling_activity"

    def encode(self, obj: HandlingActivity) -> str:
        """Return the activity's name."""
        return obj.name

    def decode(self, data: str) -> HandlingActivity:
        """Return the activity of this name."""
        return HandlingActivity[data]


class LegAsDict(Transcoding):
    """Stores a ``Leg`` as a dict (its locations and times are transcoded too)."""

    type = Leg
    name = "leg"

    def encode(self, obj: Leg) -> dict[str, Any]:
        """Return the leg's fields."""
        return {
            "voyage_number": obj.voyage_number,
            "load_location": obj.load_location,
            "unload_location": obj.unload_location,
            "load_time": obj.load_time,
            "unload_time": obj.unload_time,
        }

    def decode(self, data: dict[str, Any]) -> Leg:
        """Return the leg with these fields."""
        return Leg(**data)


class ItineraryAsDict(Transcoding):
    """Stores an ``Itinerary`` as a dict with its list of legs."""

    type = Itinerary
    name = "itinerary"

    def encode(self, obj: Itinerary) -> dict[str, Any]:
        """Return the itinerary's legs."""
        return {"legs": list(obj.legs)}

    def decode(self, data: dict[str, Any]) -> Itinerary:
        """Return the itinerary of these legs."""
        return Itinerary(tuple(data["legs"]))


class BookingApplication(Application[UUID]):
    """Books cargo, finds and assigns routes, and registers handling events."""

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        """Register the transcodings of the domain model's value objects."""
        super().register_transcodings(transcoder)
        transcoder.register(LocationAsCode())
        transcoder.register(HandlingActivityAsName())
        transcoder.register(LegAsDict())
        transcoder.register(ItineraryAsDict())

    def book_new_cargo(
        self, origin: Location, destination: Location, arrival_deadline: datetime
    ) -> UUID:
        """Book a cargo; return its tracking id."""
        cargo = Cargo.new_booking(origin, destination, arrival_deadline)
        self.save(cargo)
        return cargo.id

    def get_cargo(self, tracking_id: UUID) -> Cargo:
        """The cargo with this tracking id (``AggregateNotFoundError`` if none)."""
        cargo: Cargo = self.repository.get(tracking_id)
        return cargo

    def change_destination(self, tracking_id: UUID, destination: Location) -> None:
        """Deliver the cargo somewhere else; it may then need a new route."""
        cargo = self.get_cargo(tracking_id)
        cargo.change_destination(destination)
        self.save(cargo)

    def request_possible_routes_for_cargo(self, tracking_id: UUID) -> list[Itinerary]:
        """Routes from where the cargo is to its destination, by its deadline."""
        cargo = self.get_cargo(tracking_id)
        return find_routes(
            cargo.route_origin(),
            cargo.destination,
            ready_at=datetime_now_with_tzinfo(),
            arrival_deadline=cargo.arrival_deadline,
        )

    def assign_route(self, tracking_id: UUID, itinerary: Itinerary) -> None:
        """Assign a route (``RoutingError`` unless it satisfies the cargo's spec)."""
        for leg in itinerary.legs:
            _check_voyage(leg.voyage_number)
        cargo = self.get_cargo(tracking_id)
        cargo.assign_route(itinerary)
        self.save(cargo)

    def register_handling_event(
        self,
        tracking_id: UUID,
        voyage_number: str | None,
        location: Location,
        handling_activity: HandlingActivity,
    ) -> None:
        """Record that the cargo was received, loaded, unloaded or claimed."""
        if voyage_number is not None:
            _check_voyage(voyage_number)
        cargo = self.get_cargo(tracking_id)
        cargo.register_handling_event(handling_activity, location, voyage_number)
        self.save(cargo)


def _check_voyage(voyage_number: str) -> None:
    if voyage_number not in VOYAGES:
        known = ", ".join(VOYAGES)
        msg = f"Unknown voyage {voyage_number!r}: the timetable has {known}"
        raise UnknownVoyageError(msg)
