"""The public contract check: anyone holding a contract PDF uploads it and sees whether its signatures hold
and whether it is a contract we signed, with its proof in the evidence log (no sign-in, rate limited)."""
