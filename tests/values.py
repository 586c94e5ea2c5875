"""A value object and its custom transcoding, shared by the mapper and
application tests."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from esox.persistence.transcoding import Transcoding


@dataclass(frozen=True)
class Money:
    """A value object, stored through a custom transcoding."""

    amount: Decimal
    currency: str


class MoneyAsDict(Transcoding):
    type = Money
    name = "money"

    def encode(self, obj: Money) -> dict[str, Any]:
        return {"amount": obj.amount, "currency": obj.currency}

    def decode(self, data: dict[str, Any]) -> Money:
        return Money(**data)
