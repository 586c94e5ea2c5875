"""The demo behind ``esox demo``: bank accounts on an embedded SQLite file."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from esox._progress import Progress
from esox.examples.bankaccounts import BankAccounts, InsufficientFundsError
from esox.examples.bankaccounts_system import run_system_demo
from esox.examples.dogschool import DogSchool


def run_bank_demo(db_path: Path, *, accounts: int, transfers: int, seed: int) -> None:
    env = {"PERSISTENCE_MODULE": "esox.sqlite", "SQLITE_DBNAME": str(db_path)}
    rng = random.Random(seed)
    with BankAccounts(env=env) as bank:
        print(f"Bank accounts on SQLite file {db_path}")
        ids: list[UUID] = []
        for i in range(accounts):
            account_id = bank.open_account(f"Customer {i}", f"c{i}@example.com")
            bank.deposit_funds(account_id, Decimal("1000.00"))
            ids.append(account_id)
        print(f"Opened {accounts} accounts with 1000.00 each.")
        progress = Progress(transfers, sys.stdout, label="Transfers")
        refused = 0
        started = time.perf_counter()
        for done in range(1, transfers + 1):
            debit, credit = rng.sample(ids, 2)
            amount = Decimal(rng.randint(1, 50_000)) / 100
            try:
                bank.transfer_funds(debit, credit, amount)
            except InsufficientFundsError:
                refused += 1
            progress.update(done)
        elapsed = time.perf_counter() - started
        print(
            f"{transfers} transfers ({refused} refused for insufficient funds) in "
            f"{elapsed:.2f}s: {transfers / elapsed:,.0f} transfers/s "
            "(each: get two accounts, save both atomically)."
        )
        started = time.perf_counter()
        balances = {account_id: bank.get_balance(account_id) for account_id in ids}
        elapsed = time.perf_counter() - started
        events = bank.recorder.max_notification_id() or 0
        print(
            f"Reconstructed all {accounts} accounts from {events:,} events "
            f"in {elapsed:.3f}s."
        )
        richest = sorted(balances.items(), key=lambda kv: kv[1], reverse=True)[:3]
        for account_id, balance in richest:
            print(f"  {account_id}  {balance:>10}")
        total = sum(balances.values())
        print(f"Total of all balances: {total} (money is neither made nor lost).")
        assert total == Decimal("1000.00") * accounts
    print()
    print("Bank accounts as a system: a ledger and a notifications service follow it.")
    system_dir = db_path.parent / "system"
    system_dir.mkdir(exist_ok=True)
    print(run_system_demo(db_dir=system_dir))


def run_dogschool_demo(env: dict[str, str] | None) -> None:
    with DogSchool(env=env) as school:
        print(f"Persistence: {type(school.factory).__module__}")
        dog_id = school.register_dog("Fido")
        school.add_trick(dog_id, "roll over")
        school.add_trick(dog_id, "fetch ball")
        print(f"Registered dog {dog_id} and taught it two tricks.")
        print(f"Reconstructed from its events: {school.get_dog(dog_id)}")
        print("Notification log:")
        for n in school.notification_log.select(start=1, limit=10):
            topic = n.topic.rpartition(".")[2]
            print(f"  #{n.id} v{n.originator_version} {topic:<11} {n.state.decode()}")


def main(
    example: str, db: str | None, accounts: int, transfers: int, seed: int
) -> None:
    if example == "dogschool":
        run_dogschool_demo({"PERSISTENCE_MODULE": "esox.memory"})
        return
    if db:
        run_bank_demo(Path(db), accounts=accounts, transfers=transfers, seed=seed)
        return
    with tempfile.TemporaryDirectory() as tmp:
        run_bank_demo(
            Path(tmp) / "bank.sqlite", accounts=accounts, transfers=transfers, seed=seed
        )
