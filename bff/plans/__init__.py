"""The plan-builder journey: vehicle picker, builder with live quote, compare, plans for a budget."""
