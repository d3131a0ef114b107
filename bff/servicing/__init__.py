"""The lease in force on the BFF's side (issue 18): the daily close of business (close.py)."""
