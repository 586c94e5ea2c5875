"""The bank accounts example, on every persistence module."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from esox.examples.bankaccounts import (
    AccountClosedError,
    BankAccounts,
    InsufficientFundsError,
)
from esox.persistence import IntegrityError
from tests.persistence_envs import persistence_env


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> BankAccounts:
    with persistence_env(request.param, tmp_path, "bankaccounts") as env:
        application = BankAccounts(env=env)
        yield application
        application.close()


def test_open_deposit_withdraw_and_balance(app: BankAccounts):
    account_id = app.open_account("Alice", "alice@example.com")
    assert app.get_balance(account_id) == Decimal("0.00")
    app.deposit_funds(account_id, Decimal("200.00"))
    app.withdraw_funds(account_id, Decimal("50.00"))
    assert app.get_balance(account_id) == Decimal("150.00")
    account = app.get_account(account_id)
    assert account.full_name == "Alice" and account.version == 3


def test_insufficient_funds_and_overdraft_limit(app: BankAccounts):
    account_id = app.open_account("Bob", "bob@example.com")
    with pytest.raises(InsufficientFundsError):
        app.withdraw_funds(account_id, Decimal("1.00"))
    app.set_overdraft_limit(account_id, Decimal("10.00"))
    app.withdraw_funds(account_id, Decimal("10.00"))
    assert app.get_balance(account_id) == Decimal("-10.00")
    with pytest.raises(InsufficientFundsError):
        app.withdraw_funds(account_id, Decimal("0.01"))
    with pytest.raises(ValueError, match="positive"):
        app.deposit_funds(account_id, Decimal("-1"))


def test_transfer_changes_both_accounts_or_neither(app: BankAccounts):
    a = app.open_account("A", "a@example.com")
    b = app.open_account("B", "b@example.com")
    app.deposit_funds(a, Decimal("100.00"))
    app.transfer_funds(a, b, Decimal("30.00"))
    assert app.get_balance(a) == Decimal("70.00")
    assert app.get_balance(b) == Decimal("30.00")
    with pytest.raises(InsufficientFundsError):
        app.transfer_funds(b, a, Decimal("31.00"))
    assert app.get_balance(a) == Decimal("70.00")
    assert app.get_balance(b) == Decimal("30.00")
    # A stale credit account makes the whole transfer fail: no half transfer.
    stale_b = app.get_account(b)
    app.deposit_funds(b, Decimal("1.00"))
    debit = app.get_account(a)
    debit.withdraw(Decimal("5.00"))
    stale_b.deposit(Decimal("5.00"))
    with pytest.raises(IntegrityError):
        app.save(debit, stale_b)
    assert app.get_balance(a) == Decimal("70.00")
    assert app.get_balance(b) == Decimal("31.00")


def test_closed_account_refuses_changes(app: BankAccounts):
    account_id = app.open_account("C", "c@example.com")
    app.close_account(account_id)
    with pytest.raises(AccountClosedError):
        app.deposit_funds(account_id, Decimal("1.00"))
    assert app.get_account(account_id).is_closed
