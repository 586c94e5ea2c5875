"""The bank accounts system example: BankAccounts -> Ledger, Notifications."""

from __future__ import annotations

import contextlib
import random
from decimal import Decimal
from pathlib import Path

import pytest

from esox.examples.bankaccounts import BankAccounts, InsufficientFundsError
from esox.examples.bankaccounts_system import (
    Ledger,
    Notifications,
    run_system_demo,
    system,
)
from esox.system import MultiThreadedRunner, SingleThreadedRunner


def test_demo_summary_shows_balances_ledger_totals_and_emails():
    summary = run_system_demo()
    assert summary.splitlines() == [
        "Bank accounts as a system: BankAccounts -> Ledger, Notifications",
        "  Alice  balance   70.00  ledger: 2 entries, credits 100.00, debits 30.00",
        "  Bob    balance    5.00  ledger: 3 entries, credits 50.00, debits 45.00",
        "  email to alice@example.com: Welcome",
        "  email to bob@example.com: Welcome",
        "  email to bob@example.com: Goodbye",
    ]


def test_demo_keeps_each_application_in_its_own_sqlite_file(tmp_path: Path):
    run_system_demo(db_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == [
        "bankaccounts.sqlite",
        "ledger.sqlite",
        "notifications.sqlite",
    ]
    assert "Goodbye" in run_system_demo(db_dir=tmp_path)


@pytest.mark.parametrize("runner_cls", [SingleThreadedRunner, MultiThreadedRunner])
def test_ledger_totals_agree_with_the_bank_after_random_transfers(runner_cls: type):
    rng = random.Random(7)
    with runner_cls(system) as runner:
        bank = runner.get(BankAccounts)
        accounts = [bank.open_account(f"C{i}", f"c{i}@example.com") for i in range(5)]
        for account_id in accounts:
            bank.deposit_funds(account_id, Decimal("100.00"))
        for _ in range(60):
            debit, credit = rng.sample(accounts, 2)
            with contextlib.suppress(InsufficientFundsError):
                bank.transfer_funds(debit, credit, Decimal(rng.randint(1, 9000)) / 100)
        runner.wait()
        ledger = runner.get(Ledger)
        for account_id in accounts:
            credits, debits = ledger.get_totals(account_id)
            assert credits - debits == bank.get_balance(account_id)
        total_entries = sum(ledger.get_ledger_account(a).entries for a in accounts)
        credited_or_debited = [
            n
            for n in bank.recorder.select_notifications(None, 10_000)
            if n.topic.endswith((".Credited", ".Debited"))
        ]
        assert total_entries == len(credited_or_debited)
        assert len(runner.get(Notifications).outbox()) == 5
