"""Staff administration (dealer admins for their dealer, lessor ops for all) and the auditor's log search."""
