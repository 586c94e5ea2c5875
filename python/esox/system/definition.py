"""The definition of a system: which applications follow which."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import pairwise
from typing import Any

from esox.application import Application
from esox.system.errors import SystemDefinitionError
from esox.system.follower import Follower, Leader, ProcessApplication
from esox.utils import get_topic, resolve_topic

__all__ = ["System"]


class _Edges(dict[str, list[str]]):
    """Names by application name; a known application without any maps to []."""

    def __init__(self, names: Iterable[str], what: str) -> None:
        super().__init__()
        self._names = tuple(names)
        self._what = what

    def __missing__(self, name: str) -> list[str]:
        if name in self._names:
            return []
        raise KeyError(_unknown(name, self._names))


def _unknown(name: str, names: Iterable[str]) -> str:
    known = ", ".join(repr(n) for n in names)
    return f"No application named {name!r} in this system (it has {known})"


class System:
    """Applications and the pipes between them.

    ``System(pipes=[[A, B, C], [A, D]])``: B follows A, C follows B and D
    follows A. A pipe of one class adds an application that follows nothing
    and leads nothing (a "single"). Cycles are allowed (their members must
    be process applications); a process application may follow itself.
    Applications are known by their ``name`` (the class name by default).
    """

    def __init__(self, pipes: Iterable[Iterable[type[Application[Any]]]]) -> None:
        classes: dict[str, type[Application[Any]]] = {}
        self.edges: list[tuple[str, str]] = []
        pipes = self._check_pipes(pipes)
        for pipe in pipes:
            for cls in pipe:
                registered = classes.setdefault(cls.name, cls)
                if registered is not cls:
                    msg = (
                        f"Two applications are named {cls.name!r}: "
                        f"{get_topic(registered)} and {get_topic(cls)}; "
                        "give one of them another 'name'"
                    )
                    raise SystemDefinitionError(msg)
            for leader_cls, follower_cls in pairwise(pipe):
                # An application may follow itself (a process application
                # reacting to its own events), as in eventsourcing.
                edge = (leader_cls.name, follower_cls.name)
                if edge not in self.edges:
                    self.edges.append(edge)

        self.nodes: dict[str, str] = {name: get_topic(c) for name, c in classes.items()}
        self._classes = classes
        self.follows = _Edges(classes, "follows")
        self.leads = _Edges(classes, "leads")
        for leader_name, follower_name in self.edges:
            self.leads.setdefault(leader_name, []).append(follower_name)
            self.follows.setdefault(follower_name, []).append(leader_name)
        self.singles = [
            name
            for name in classes
            if name not in self.leads and name not in self.follows
        ]
        # eventsourcing's messages, exactly: its users' tests compare them.
        for name in self.followers:
            if not issubclass(classes[name], Follower):
                msg = f"Not a follower class: {classes[name]}"
                raise TypeError(msg)
        for name in self.processors:
            if not issubclass(classes[name], ProcessApplication):
                msg = f"Not a process application class: {classes[name]}"
                raise TypeError(msg)

    @staticmethod
    def _check_pipes(
        pipes: Iterable[Iterable[type[Application[Any]]]],
    ) -> list[tuple[type[Application[Any]], ...]]:
        hint = "pipes is a list of lists of application classes: [[A, B], [A, C]]"
        if isinstance(pipes, type) or not isinstance(pipes, Iterable):
            msg = f"Invalid pipes {pipes!r}: {hint}"
            raise SystemDefinitionError(msg)
        checked = []
        for pipe in pipes:
            if isinstance(pipe, type) or not isinstance(pipe, Iterable):
                msg = f"Invalid pipe {pipe!r}: {hint}"
                raise SystemDefinitionError(msg)
            pipe = tuple(pipe)
            for cls in pipe:
                if not (isinstance(cls, type) and issubclass(cls, Application)):
                    msg = f"Invalid pipe member {cls!r}: not an Application class"
                    raise SystemDefinitionError(msg)
            checked.append(pipe)
        return checked

    @property
    def names(self) -> list[str]:
        """The names of all the applications, in order of appearance."""
        return list(self._classes)

    @property
    def leaders(self) -> list[str]:
        """Applications followed by others."""
        return list(self.leads)

    @property
    def leaders_only(self) -> list[str]:
        """Applications followed by others that follow none."""
        return [name for name in self.leads if name not in self.follows]

    @property
    def followers(self) -> list[str]:
        """Applications that follow others."""
        return list(self.follows)

    @property
    def processors(self) -> list[str]:
        """Applications that follow others and are followed too."""
        return [name for name in self.leads if name in self.follows]

    def get_app_cls(self, name: str) -> type[Application[Any]]:
        """The class of the application named ``name``."""
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(_unknown(name, self._classes)) from None

    def leader_cls(self, name: str) -> type[Leader[Any]]:
        """The application's class, made a Leader if it is not one."""
        cls = self.get_app_cls(name)
        if issubclass(cls, Leader):
            return cls
        leader_cls = _LEADER_CLASSES.get(cls)
        if leader_cls is None:
            leader_cls = type(cls.__name__, (Leader, cls), {"name": cls.name})
            _LEADER_CLASSES[cls] = leader_cls
        return leader_cls

    def follower_cls(self, name: str) -> type[Follower[Any]]:
        """The class of a follower (TypeError if it is not one)."""
        cls = self.get_app_cls(name)
        if not issubclass(cls, Follower):
            msg = f"{name} is not a Follower: {get_topic(cls)}"
            raise TypeError(msg)
        return cls

    @property
    def topic(self) -> str:
        """``module:attribute`` naming this system, to start it elsewhere by name.

        Found in the module of the first application class, or the caller's
        modules; define the system at module level to have one.
        """
        modules = {c.__module__ for c in self._classes.values()}
        for module_name in sorted(modules) + list(sys.modules):
            module = sys.modules.get(module_name)
            for attr, value in vars(module).items() if module else ():
                if value is self:
                    topic = f"{module_name}:{attr}"
                    if resolve_topic(topic) is self:
                        return topic
        msg = "This system is not a module attribute, so it has no topic"
        raise SystemDefinitionError(msg)

    def __repr__(self) -> str:
        pipes = ", ".join(f"{a} -> {b}" for a, b in self.edges)
        singles = f", singles {self.singles}" if self.singles else ""
        return f"System({pipes or 'no pipes'}{singles})"


# One leader class per plain application class, so instances are alike.
_LEADER_CLASSES: dict[type[Application[Any]], type[Leader[Any]]] = {}
