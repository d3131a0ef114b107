"""The lease in force, pure: instalments from the handover date, settlement quotes, allocation of payments, penalty
accrual and re-amortisation — Decimal money rounded half-up to the fen once per amount, no I/O.

It imports nothing of ours but :mod:`plans` (money, schedules, the product's terms); the BFF's servicing journey,
the daily close of business and the ``leaseline`` commands call it.

Public entry points:

- :func:`servicing.instalments.dated_schedule` — a quote's rents with their due dates from the term's start.
- :func:`servicing.settlement.settlement_quote` — early settlement (提前结清) after K rents and D days (issue 18 §9);
  :func:`servicing.settlement.settlement_quote_on` — the same on a calendar date.
- :func:`servicing.allocation.allocate` — a payment split over open instalments in the policy's order.
- :func:`servicing.penalty.penalty_for_day`, :func:`servicing.penalty.penalty_between` — late charges (罚息).
- :func:`servicing.reamortise.prepayment_options` — a partial prepayment: a shorter term or a lower rent.
"""
