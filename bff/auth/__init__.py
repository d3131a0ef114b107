"""Staff sign-in, sessions, roles and tenant scoping (issue 3)."""
