"""HTTP plumbing the three Flask apps share (the BFF, the risk service, the contract service): problem+json
responses, JSON request bodies and query strings read the same way, and the handlers that answer their
refusals. One copy, imported by each service (STYLE.md habit 16); it imports none of them."""
