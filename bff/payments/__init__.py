"""Payments after signing: the upfront payment, the deposit or a pre-authorisation hold (免押), refunds,
Stripe webhooks and reconciliation."""
