"""Bank accounts: the worked example of an event-sourced application."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from esox import Aggregate, Application, event
from esox.domain import EventSourcingError

__all__ = [
    "AccountClosedError",
    "BankAccount",
    "BankAccounts",
    "InsufficientFundsError",
]


class AccountClosedError(EventSourcingError):
    """The account is closed: no more deposits, withdrawals or transfers."""


class InsufficientFundsError(EventSourcingError):
    """The withdrawal would take the balance below the overdraft limit."""


class BankAccount(Aggregate):
    """A bank account with a balance in one currency and an overdraft limit."""

    @event("Opened")
    def __init__(self, full_name: str, email_address: str) -> None:
        self.full_name = full_name
        self.email_address = email_address
        self.balance = Decimal("0.00")
        self.overdraft_limit = Decimal("0.00")
        self.is_closed = False

    def deposit(self, amount: Decimal) -> None:
        """Add money to the account."""
        self._check_open()
        if amount <= 0:
            msg = f"Deposit amount must be positive, not {amount}"
            raise ValueError(msg)
        self._credit(amount)

    def withdraw(self, amount: Decimal) -> None:
        """Take money from the account, down to minus the overdraft limit."""
        self._check_open()
        if amount <= 0:
            msg = f"Withdrawal amount must be positive, not {amount}"
            raise ValueError(msg)
        if self.balance - amount < -self.overdraft_limit:
            msg = (
                f"Account {self.id} has {self.balance} with an overdraft limit of "
                f"{self.overdraft_limit}: can't withdraw {amount}"
            )
            raise InsufficientFundsError(msg)
        self._debit(amount)

    @event("Credited")
    def _credit(self, amount: Decimal) -> None:
        self.balance += amount

    @event("Debited")
    def _debit(self, amount: Decimal) -> None:
        self.balance -= amount

    @event("OverdraftLimitSet")
    def set_overdraft_limit(self, limit: Decimal) -> None:
        """Allow the balance to go down to minus ``limit``."""
        if limit < 0:
            msg = f"Overdraft limit must not be negative, not {limit}"
            raise ValueError(msg)
        self._check_open()
        self.overdraft_limit = limit

    @event("Closed")
    def close(self) -> None:
        """Close the account."""
        self._check_open()
        self.is_closed = True

    def _check_open(self) -> None:
        if self.is_closed:
            msg = f"Account {self.id} is closed"
            raise AccountClosedError(msg)


class BankAccounts(Application[UUID]):
    """Opens accounts and moves money between them."""

    def open_account(self, full_name: str, email_address: str) -> UUID:
        account = BankAccount(full_name, email_address)
        self.save(account)
        return account.id

    def get_account(self, account_id: UUID) -> BankAccount:
        account: BankAccount = self.repository.get(account_id)
        return account

    def get_balance(self, account_id: UUID) -> Decimal:
        return self.get_account(account_id).balance

    def deposit_funds(self, account_id: UUID, amount: Decimal) -> None:
        account = self.get_account(account_id)
        account.deposit(amount)
        self.save(account)

    def withdraw_funds(self, account_id: UUID, amount: Decimal) -> None:
        account = self.get_account(account_id)
        account.withdraw(amount)
        self.save(account)

    def transfer_funds(
        self, debit_account_id: UUID, credit_account_id: UUID, amount: Decimal
    ) -> None:
        """Move money between two accounts: both change, or neither does."""
        if debit_account_id == credit_account_id:
            msg = "Can't transfer funds from an account to itself"
            raise ValueError(msg)
        debit_account = self.get_account(debit_account_id)
        credit_account = self.get_account(credit_account_id)
        debit_account.withdraw(amount)
        credit_account.deposit(amount)
        self.save(debit_account, credit_account)

    def set_overdraft_limit(self, account_id: UUID, limit: Decimal) -> None:
        account = self.get_account(account_id)
        account.set_overdraft_limit(limit)
        self.save(account)

    def close_account(self, account_id: UUID) -> None:
        account = self.get_account(account_id)
        account.close()
        self.save(account)
