"""Cargo shipping: the DDD sample application (Evans), event-sourced.

``domainmodel`` has the ``Cargo`` aggregate, its value objects and the route
finder; ``application`` the ``BookingApplication``; ``interface`` the
``BookingService`` that speaks plain strings and dicts.
"""
