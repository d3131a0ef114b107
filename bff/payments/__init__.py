"""Payments after signing: the upfront payment, the deposit or a pre-authorisation hold (免押), refunds,
Stripe webhooks and reconciliation; the lease's handover, closing and settlement.

One service per kind of work, wired in bff/bootstrap.py (``services.payments``), each depending on the payment
gateway port (infra/payments.py ``PaymentGateway``) rather than on Stripe's adapter:

- ``checkout.py``: what a signed lease owes, the customer paying it, the lessor capturing or releasing a hold, and
  lapsed holds;
- ``webhooks.py``: Stripe's events, each applied once;
- ``refunds.py``: refunds, and those whose answer was lost sent again;
- ``payouts.py``: the dealers' shares (分账) through Stripe Connect;
- ``settlement.py``: the handover (交车), the closing (结清) and the settle job;
- ``reconciliation.py``: our payments compared with Stripe's;
- ``intents.py``: a payment moved by what Stripe says about its intent (used by the checkout, the webhooks and the
  settlement); ``common.py``: what they share; ``machine.py``: the state machine, pure.

Every create/capture/cancel/refund carries an Idempotency-Key derived from our own record
(``pay:<payment>:<n>``, ``capture:<payment>``, ``refund:<refund>``; the settle job's own steps
``settle-capture:<lease>:<n>`` and ``settle-release:<lease>:<n>``, ``n`` being ops' retry), and our own state guards
it too:
localstripe ignores the keys, and a double tap must not reach Stripe twice at all. A dealer-share transfer that
Stripe refused is retried by ops as a new attempt (``transfer:<payment>:<n>``): Stripe answers a key it has seen
with the same answer, its refusal included.
"""
