"""The ``leaseline`` command: staff operations, demo data, and the process supervisor of ``make run``."""
