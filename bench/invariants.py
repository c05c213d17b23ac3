"""What every benchmark run must leave true, checked in SQL after it: no two open bookings of
one GPU overlap, every ledger transaction sums to zero, every balance is the sum of its
entries, and all balances together sum to zero."""

from __future__ import annotations

from sqlalchemy import create_engine, text

CHECKS = {
    "overlapping open bookings": """
        SELECT count(*) FROM bookings a JOIN bookings b
        ON a.gpu_id = b.gpu_id AND a.id < b.id AND a.status = 'open' AND b.status = 'open'
        AND a.start_time < b.end_time AND b.start_time < a.end_time""",
    "unbalanced transactions": """
        SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries
        GROUP BY transaction_id HAVING sum(amount_units) <> 0) t""",
    "balances unlike their entries": """
        SELECT count(*) FROM accounts a WHERE a.balance_units <>
        (SELECT coalesce(sum(e.amount_units), 0) FROM ledger_entries e
         WHERE e.account_id = a.id)""",
    "sum of all balances": "SELECT coalesce(sum(balance_units), 0) FROM accounts",
}


def check(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found = {name: conn.execute(text(sql)).scalar() for name, sql in CHECKS.items()}
    finally:
        engine.dispose()
    broken = {name: value for name, value in found.items() if value}
    if broken:
        raise SystemExit(f"invariants broken after the run: {broken}")
    return "no overlapping open bookings, every transaction and the ledger sum to zero"
