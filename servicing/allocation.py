"""Allocating a payment (还款冲销顺序) over the open instalments, exact to the fen.

The policy names the order of the parts — by default late charges (罚息), then interest, then principal — and the
instalments are taken oldest first. ``across`` says how the two orders combine:

- ``"instalment"`` (default): the oldest instalment is cleared part by part before the next one is touched;
- ``"component"``: the first part of every instalment (oldest first), then the second part of every one, …

Nothing is rounded: every amount is a whole number of fen and the split of a payment adds up to it exactly; what no
instalment needs is the ``surplus`` (an overpayment, held or refunded by the caller).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from plans.money import ZERO
from plans.money import fen

Component = Literal["penalty", "interest", "principal"]
COMPONENTS: tuple[Component, ...] = ("penalty", "interest", "principal")
#: the default order of the parts (issue 18 §3): penalty → interest → principal
DEFAULT_ORDER: tuple[Component, ...] = COMPONENTS
Across = Literal["instalment", "component"]


@dataclass(frozen=True)
class Parts:
    """An instalment's parts: what is still owed of it, or what a payment settles of it."""

    period: int
    penalty: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.penalty + self.interest + self.principal

    def part(self, component: Component) -> Decimal:
        return {"penalty": self.penalty, "interest": self.interest, "principal": self.principal}[component]


@dataclass(frozen=True)
class Allocation:
    """A payment's split: one :class:`Parts` per open instalment, oldest first (zeros where nothing went), and
    the surplus no instalment needed. ``applied + surplus`` is the payment."""

    splits: tuple[Parts, ...]
    surplus: Decimal

    @property
    def applied(self) -> Decimal:
        return sum((s.total for s in self.splits), ZERO)

    def remaining(self, owed: Sequence[Parts]) -> tuple[Parts, ...]:
        """What is still owed of each of ``owed`` (the allocation's input) after this payment."""
        paid = {s.period: s for s in self.splits}
        return tuple(Parts(o.period, o.penalty - paid[o.period].penalty, o.interest - paid[o.period].interest,
                           o.principal - paid[o.period].principal) for o in sorted(owed, key=lambda o: o.period))


def _check_fen(name: str, amount: Decimal) -> None:
    if amount < 0 or amount != fen(amount):
        raise ValueError(f"{name} must be an amount to the fen, not negative")


def allocate(amount: Decimal, owed: Sequence[Parts], order: Sequence[Component] = DEFAULT_ORDER,
             across: Across = "instalment") -> Allocation:
    """Split ``amount`` over the open instalments ``owed`` in ``order`` of the parts, oldest instalment (lowest
    period) first; see the module's docstring for ``across``. Raises :class:`ValueError` for an amount that is not
    a whole number of fen or is negative, an order that is not a permutation of the three parts, or one period
    listed twice."""
    _check_fen("the payment", amount)
    if sorted(order) != sorted(COMPONENTS):
        raise ValueError(f"the order must name each of {', '.join(COMPONENTS)} once")
    if across not in ("instalment", "component"):
        raise ValueError("across must be 'instalment' or 'component'")
    items = sorted(owed, key=lambda o: o.period)
    if len({o.period for o in items}) != len(items):
        raise ValueError("an instalment is listed twice")
    for o in items:
        for c in COMPONENTS:
            _check_fen(f"instalment {o.period}'s {c}", o.part(c))
    taken: dict[tuple[int, Component], Decimal] = {}
    left = amount
    steps = ([(o, c) for o in items for c in order] if across == "instalment"
             else [(o, c) for c in order for o in items])
    for o, c in steps:
        taken[o.period, c] = min(left, o.part(c))
        left -= taken[o.period, c]
    return Allocation(tuple(Parts(o.period, *(taken[o.period, c] for c in COMPONENTS)) for o in items), left)
