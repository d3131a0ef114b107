"""The books on the ops desk and the dealer's statement (issue 19 §4): bff/books/views.py."""
