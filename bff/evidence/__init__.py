"""The evidence log's clear entries for those entitled to them: the customer (their own application), the
dealer's and the lessor's staff by role and dealer, the auditor; each disclosure audit-logged. The public log
holds commitments only (contract.ledger.commitments); what is handed out here is a proof bundle that anyone
holding it checks offline (contract.ledger.bundle)."""
