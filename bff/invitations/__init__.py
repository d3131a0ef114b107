"""Customer hand-off: a salesperson invites a customer by QR code; the customer confirms their mobile with a
one-time code and configures the plan on their own phone while the salesperson watches it live."""
