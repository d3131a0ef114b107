"""The books, pure (issue 19): the chart of accounts (a versioned file, names in zh and en), journal entries in
integer fen checked before they are posted, the posting rules per money event and the Beancount export. No I/O but
reading the chart file; :mod:`infra.books` posts entries into PostgreSQL in the transaction of the event that causes
them.

Why a small core of our own and not ``python-accounting`` (PyPI): that library brings its own schema (entities,
reporting periods, ledgers, transactions as ORM models with their own IDs and rules: VAT on its own terms, no
per-lease sub-ledger dimension, floats in places) and its own session; the books must post in the very transaction
of each lease event, keyed by the event so that a replay posts nothing twice, with a lease and a dealer on each line
and the whole ledger exported to Beancount for an independent check. What a general ledger needs for that — balanced
entries of integer fen, append-only, reversals not edits, a chart — is a few hundred lines; PostgreSQL enforces the
balance and the append-only rule itself (migration 0029)."""
