"""Lease maths and products: pure functions over Decimal money, no I/O beyond reading packaged data files.

Public entry points:

- :func:`plans.quote.quote` — one exact quote (rent, schedule, cash flows, APR) from a :class:`QuoteRequest`.
- :func:`plans.apr.irr` — the internal rate of return of monthly cash flows (the APR of PBOC 2021 No. 3).
- :class:`plans.policy.Policy` — the compliance policy (versioned TOML under ``plans/policies``).
- :class:`plans.product.Product` — the lessor's product: rate card, insurance tariff, fees, option steps.
- :func:`plans.generator.generate` — every combination of a vehicle's options, evaluated at once.
"""
