"""The lessor's operations pages that are about the system rather than a lease (the job queue)."""
