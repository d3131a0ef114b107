"""The contract service's tables and migrations."""
