"""HTTP clients of our own services (risk, contract): timeouts, bounded retries, a circuit breaker."""
