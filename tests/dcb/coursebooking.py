"""Course booking with dynamic consistency boundaries (``esox.dcb``).

Students and courses are enduring objects; a student joining a course is one
decision, tagged with both, decided by a group of the two (its boundary: the
decisions tagged with either). Decisions are msgspec structs, as in
eventsourcing's own DCB examples, so that benches/bench_dcb_app.py can load
this module for eventsourcing 9.5 too (``for_eventsourcing()``: its imports
pointed at eventsourcing) and run the same model on both libraries.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from esox.dcb import domain
from esox.dcb.application import DCBApplication
from esox.dcb.domain import EnduringObject, Group
from esox.dcb.msgpack import Decision, InitialDecision
from esox.dcb.msgpack import MessagePackMapper as Mapper
from esox.domain import event
from esox.utils import get_topic


class CourseBookingError(Exception):
    """A decision the rules refuse."""


class FullyBookedError(CourseBookingError):
    pass


class TooManyCoursesError(CourseBookingError):
    pass


class AlreadyJoinedError(CourseBookingError):
    pass


class NotFoundInBookingError(CourseBookingError):
    pass


class StudentJoinedCourse(Decision):
    student_id: str
    course_id: str


class Student(EnduringObject[Any, str]):
    class Registered(InitialDecision):
        student_id: str
        name: str
        max_courses: int

    class Renamed(Decision):
        name: str

    def __init__(self, name: str, max_courses: int) -> None:
        self.name = name
        self.max_courses = max_courses
        self.course_ids: list[str] = []

    @event(Renamed)
    def rename(self, name: str) -> None:
        self.name = name

    @event(StudentJoinedCourse)
    def _(self, course_id: str) -> None:
        if course_id in self.course_ids:
            raise AlreadyJoinedError(course_id)
        if len(self.course_ids) >= self.max_courses:
            raise TooManyCoursesError(self.id)
        self.course_ids.append(course_id)


class Course(EnduringObject[Any, str]):
    class Registered(InitialDecision):
        course_id: str
        name: str
        places: int

    def __init__(self, name: str, places: int) -> None:
        self.name = name
        self.places = places
        self.student_ids: list[str] = []

    @event(StudentJoinedCourse)
    def _(self, student_id: str) -> None:
        if len(self.student_ids) >= self.places:
            raise FullyBookedError(self.id)
        self.student_ids.append(student_id)


class StudentAndCourse(Group[Any]):
    def __init__(self, student: Student | None, course: Course | None) -> None:
        if student is None or course is None:
            raise NotFoundInBookingError
        self.student = student
        self.course = course

    def join(self) -> None:
        self.trigger_event(
            StudentJoinedCourse, student_id=self.student.id, course_id=self.course.id
        )


class CourseBooking(DCBApplication):
    env = {"MAPPER_TOPIC": get_topic(Mapper)}

    def register_student(self, name: str, max_courses: int) -> str:
        student = Student(name=name, max_courses=max_courses)
        self.repository.save(student)
        return student.id

    def register_course(self, name: str, places: int) -> str:
        course = Course(name=name, places=places)
        self.repository.save(course)
        return course.id

    def join_course(self, student_id: str, course_id: str) -> None:
        group = self.repository.get_group(StudentAndCourse, student_id, course_id)
        group.join()
        self.repository.save(group)

    def rename_student(self, student_id: str, name: str) -> None:
        student = cast(Student, self.repository.get(student_id))
        student.rename(name)
        self.repository.save(student)

    def students_of(self, course_id: str) -> list[str]:
        course = cast(Course, self.repository.get(course_id))
        students = self.repository.get_many(*course.student_ids)
        return [cast(Student, s).name for s in students if s is not None]

    def courses_of(self, student_id: str) -> list[str]:
        student = cast(Student, self.repository.get(student_id))
        courses = self.repository.get_many(*student.course_ids)
        return [cast(Course, c).name for c in courses if c is not None]


def _variant(name: str, old: str, new: str) -> Any:
    """This module's source with ``old`` replaced by ``new``, as a module."""
    if name in sys.modules:
        return sys.modules[name]
    source = Path(__file__).read_text()
    if old not in source:
        msg = f"{old!r} is not in {__file__}"
        raise LookupError(msg)
    source = source.replace(old, new)
    module = types.ModuleType(name)
    sys.modules[name] = module  # so that the decisions' topics resolve
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def for_eventsourcing() -> Any:
    """This module with eventsourcing's imports."""
    return _variant(
        "tests.dcb._coursebooking_eventsourcing", "from esox.", "from eventsourcing."
    )


class DataclassDecision(domain.Decision):
    """A decision whose subclasses are dataclasses (for the JSON mapper)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(cls)


class DataclassInitialDecision(DataclassDecision, domain.InitialDecision):
    originator_topic: str


def with_json_decisions() -> Any:
    """This module with dataclass decisions and esox's JSONDCBMapper (its
    Rust mapper) instead of msgspec structs and MessagePack."""
    return _variant(
        "tests.dcb._coursebooking_json",
        "from esox.dcb.msgpack import Decision, InitialDecision\n"
        "from esox.dcb.msgpack import MessagePackMapper as Mapper\n",
        "from tests.dcb.coursebooking import DataclassDecision as Decision\n"
        "from tests.dcb.coursebooking import (\n"
        "    DataclassInitialDecision as InitialDecision,\n"
        ")\n"
        "from esox.dcb.persistence import JSONDCBMapper as Mapper\n",
    )
