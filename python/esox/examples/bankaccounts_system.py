"""Bank accounts as a system: the bank, a ledger and a notifications service.

``BankAccounts`` (the application of ``esox.examples.bankaccounts``) leads;
``Ledger`` follows it and keeps each account's running totals, entry by
entry; ``Notifications`` follows only the opening and closing of accounts
and writes the emails to send (an outbox). Both record their new events
with the position of the bank event that caused them: exactly once each.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from uuid import NAMESPACE_URL, UUID, uuid5

from esox import Aggregate, event
from esox.application import AggregateNotFoundError, ProcessingEvent
from esox.examples.bankaccounts import BankAccount, BankAccounts
from esox.system import (
    ProcessApplication,
    Runner,
    SingleThreadedRunner,
    System,
    singledispatchmethod,
)
from esox.utils import EnvType, get_topic

if TYPE_CHECKING:  # @event makes these classes at run time, unseen by type checkers
    Opened: TypeAlias = Any
    Credited: TypeAlias = Any
    Debited: TypeAlias = Any
    Closed: TypeAlias = Any
else:
    Opened, Credited, Debited, Closed = (
        BankAccount.Opened,
        BankAccount.Credited,
        BankAccount.Debited,
        BankAccount.Closed,
    )

__all__ = [
    "Email",
    "Ledger",
    "LedgerAccount",
    "Notifications",
    "run_system_demo",
    "system",
]


class LedgerAccount(Aggregate):
    """The ledger's running totals of one bank account."""

    @staticmethod
    def create_id(account_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"/ledger/{account_id}")

    @event("Started")
    def __init__(self, account_id: UUID, full_name: str) -> None:
        self.account_id = account_id
        self.full_name = full_name
        self.credits = Decimal("0.00")
        self.debits = Decimal("0.00")
        self.entries = 0
        self.last_bank_notification = 0

    @event("EntryRecorded")
    def record_entry(self, amount: Decimal, bank_notification_id: int) -> None:
        """Add a credit (positive amount) or a debit (negative amount)."""
        if amount >= 0:
            self.credits += amount
        else:
            self.debits -= amount
        self.entries += 1
        self.last_bank_notification = bank_notification_id

    @property
    def balance(self) -> Decimal:
        return self.credits - self.debits


class Ledger(ProcessApplication[UUID]):
    """Keeps per-account totals from the bank's Credited and Debited events."""

    follow_topics = (
        get_topic(Opened),
        get_topic(Credited),
        get_topic(Debited),
    )

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        """Other events change no totals."""

    @policy.register
    def _(self, domain_event: Opened, processing_event: ProcessingEvent[UUID]) -> None:
        account = LedgerAccount(domain_event.originator_id, domain_event.full_name)
        processing_event.collect_events(account)

    @policy.register
    def _(
        self,
        domain_event: Credited,
        processing_event: ProcessingEvent[UUID],
    ) -> None:
        self._add_entry(
            processing_event, domain_event.originator_id, domain_event.amount
        )

    @policy.register
    def _(self, domain_event: Debited, processing_event: ProcessingEvent[UUID]) -> None:
        self._add_entry(
            processing_event, domain_event.originator_id, -domain_event.amount
        )

    def _add_entry(
        self, processing_event: ProcessingEvent[UUID], account_id: UUID, amount: Decimal
    ) -> None:
        account = self.get_ledger_account(account_id)
        assert processing_event.tracking is not None
        account.record_entry(amount, processing_event.tracking.notification_id)
        processing_event.collect_events(account)

    def get_ledger_account(self, account_id: UUID) -> LedgerAccount:
        """The totals of bank account ``account_id``."""
        ledger_account: LedgerAccount = self.repository.get(
            LedgerAccount.create_id(account_id)
        )
        return ledger_account

    def get_totals(self, account_id: UUID) -> tuple[Decimal, Decimal]:
        """Total credits and total debits of bank account ``account_id``."""
        account = self.get_ledger_account(account_id)
        return account.credits, account.debits


class Email(Aggregate):
    """An email to send (the outbox: a mailer reads these)."""

    @event("Written")
    def __init__(self, to: str, subject: str, body: str, account_id: UUID) -> None:
        self.to = to
        self.subject = subject
        self.body = body
        self.account_id = account_id


class Notifications(ProcessApplication[UUID]):
    """Writes a welcome email when an account opens, and a goodbye when it closes."""

    follow_topics = (get_topic(Opened), get_topic(Closed))

    @singledispatchmethod
    def policy(
        self, domain_event: Any, processing_event: ProcessingEvent[UUID]
    ) -> None:
        """Nothing to say about other events."""

    @policy.register
    def _(self, domain_event: Opened, processing_event: ProcessingEvent[UUID]) -> None:
        email = Email(
            to=domain_event.email_address,
            subject="Welcome",
            body=f"Dear {domain_event.full_name}, your account is open.",
            account_id=domain_event.originator_id,
        )
        processing_event.collect_events(email)

    @policy.register
    def _(self, domain_event: Closed, processing_event: ProcessingEvent[UUID]) -> None:
        welcome = self._welcome_email(domain_event.originator_id)
        email = Email(
            to=welcome.to,
            subject="Goodbye",
            body="Your account is closed. Thank you for banking with us.",
            account_id=domain_event.originator_id,
        )
        processing_event.collect_events(email)

    def _welcome_email(self, account_id: UUID) -> Email:
        for email in self.outbox():
            if email.account_id == account_id and email.subject == "Welcome":
                return email
        raise AggregateNotFoundError(account_id)

    def outbox(self) -> list[Email]:
        """Every email written, oldest first (this application records nothing else)."""
        notifications = self.recorder.select_notifications(None, 1_000_000)
        return [
            self.repository.get(written.originator_id)
            for written in self.mapper.to_domain_events(notifications)
        ]


system = System(pipes=[[BankAccounts, Ledger], [BankAccounts, Notifications]])
"""The bank and its two followers."""


def run_commands(runner: Runner[Any]) -> dict[str, UUID]:
    """Open two accounts, move money, close one: the demo's commands."""
    bank = runner.get(BankAccounts)
    alice = bank.open_account("Alice", "alice@example.com")
    bob = bank.open_account("Bob", "bob@example.com")
    bank.deposit_funds(alice, Decimal("100.00"))
    bank.deposit_funds(bob, Decimal("20.00"))
    bank.transfer_funds(alice, bob, Decimal("30.00"))
    bank.withdraw_funds(bob, Decimal("45.00"))
    bank.close_account(bob)
    return {"Alice": alice, "Bob": bob}


def summarise(runner: Runner[Any], accounts: dict[str, UUID]) -> str:
    """What the bank, the ledger and the outbox say, as printable lines."""
    bank, ledger = runner.get(BankAccounts), runner.get(Ledger)
    lines = ["Bank accounts as a system: BankAccounts -> Ledger, Notifications"]
    for name, account_id in accounts.items():
        account = ledger.get_ledger_account(account_id)
        lines.append(
            f"  {name:<6} balance {bank.get_balance(account_id):>7}  ledger: "
            f"{account.entries} entries, credits {account.credits}, "
            f"debits {account.debits}"
        )
    for email in runner.get(Notifications).outbox():
        lines.append(f"  email to {email.to}: {email.subject}")
    return "\n".join(lines)


def run_system_demo(
    env: EnvType | None = None, *, db_dir: str | Path | None = None
) -> str:
    """Run the demo's commands through a SingleThreadedRunner; return a summary.

    ``db_dir``: keep each application in an SQLite file of its own there
    (otherwise ``env`` decides, in memory by default).
    """
    settings = dict(env or {})
    if db_dir is not None:
        settings["PERSISTENCE_MODULE"] = "esox.sqlite"
        for name in system.names:
            path = Path(db_dir) / f"{name.lower()}.sqlite"
            settings[f"{name.upper()}_SQLITE_DBNAME"] = str(path)
    with SingleThreadedRunner(system, env=settings) as runner:
        return summarise(runner, run_commands(runner))


if __name__ == "__main__":
    print(run_system_demo())
