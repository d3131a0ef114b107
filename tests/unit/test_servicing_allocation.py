"""servicing.allocation: a payment split over the open instalments in the policy's order (issue 18 §3), exact to the
fen — hand-worked partial payments, then properties: nothing lost or made up, nothing beyond what is owed, and no
part paid while a part ranked before it is still open."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from servicing.allocation import COMPONENTS
from servicing.allocation import Across
from servicing.allocation import Component
from servicing.allocation import Parts
from servicing.allocation import allocate

D = Decimal
# two overdue rents of the hand-worked 3-month lease (tests/unit/test_servicing_settlement.py), oldest last in the
# list on purpose: rent 1 with ¥5.00 of late charges, rent 2 without
OWED = [Parts(2, D("0.00"), D("67.00"), D("3333.22")), Parts(1, D("5.00"), D("100.00"), D("3300.22"))]


def test_a_partial_payment_clears_the_oldest_rent_part_by_part() -> None:
    # ¥200: rent 1's late charge 5.00, its interest 100.00, then 95.00 of its principal; rent 2 untouched
    a = allocate(D("200.00"), OWED)
    assert a.splits == (Parts(1, D("5.00"), D("100.00"), D("95.00")), Parts(2, D("0.00"), D("0.00"), D("0.00")))
    assert (a.applied, a.surplus) == (D("200.00"), D("0.00"))
    assert a.remaining(OWED) == (Parts(1, D("0.00"), D("0.00"), D("3205.22")), Parts(2, D("0.00"), D("67.00"),
                                                                                     D("3333.22")))


def test_by_component_every_late_charge_then_every_interest_then_principal() -> None:
    # ¥200: late charge 5.00 (rent 1), interest 100.00 (rent 1) and 67.00 (rent 2), principal 28.00 (rent 1)
    a = allocate(D("200.00"), OWED, across="component")
    assert a.splits == (Parts(1, D("5.00"), D("100.00"), D("28.00")), Parts(2, D("0.00"), D("67.00"), D("0.00")))


def test_another_order_and_an_overpayment() -> None:
    # principal first: ¥3,400 pays rent 1's principal 3,300.22 and 99.78 of its interest
    a = allocate(D("3400.00"), OWED, order=("principal", "interest", "penalty"))
    assert a.splits[0] == Parts(1, D("0.00"), D("99.78"), D("3300.22"))
    # everything owed is 6,805.44: ¥7,000 leaves 194.56 over
    a = allocate(D("7000.00"), OWED)
    assert a.applied == sum(o.total for o in OWED) == D("6805.44") and a.surplus == D("194.56")
    assert all(r.total == 0 for r in a.remaining(OWED))
    assert allocate(D("0.00"), OWED).applied == 0


@pytest.mark.parametrize(("amount", "owed", "order"), [
    (D("0.001"), OWED, COMPONENTS),  # not a whole number of fen
    (D("-1.00"), OWED, COMPONENTS),
    (D("1.00"), [Parts(1, D("0.005"))], COMPONENTS),
    (D("1.00"), OWED + [Parts(1)], COMPONENTS),  # rent 1 listed twice
    (D("1.00"), OWED, ("penalty", "interest")),  # a part missing from the order
    (D("1.00"), OWED, ("penalty", "penalty", "principal")),
])
def test_bad_figures_are_refused(amount: Decimal, owed: list[Parts], order: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        allocate(amount, owed, order)  # type: ignore[arg-type]


fen_amounts = st.integers(0, 500_000).map(lambda c: D(c).scaleb(-2))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(fen_amounts, fen_amounts, fen_amounts), min_size=1, max_size=6),
       st.integers(0, 3_000_000).map(lambda c: D(c).scaleb(-2)), st.permutations(COMPONENTS),
       st.sampled_from(["instalment", "component"]))
def test_nothing_lost_nothing_beyond_what_is_owed_and_the_order_kept(
        parts: list[tuple[Decimal, Decimal, Decimal]], amount: Decimal, order: list[Component],
        across: Across) -> None:
    owed = [Parts(period, *p) for period, p in enumerate(parts, start=1)]
    a = allocate(amount, owed, order, across)
    assert a.applied + a.surplus == amount
    assert a.surplus == max(D(0), amount - sum(o.total for o in owed))
    assert [s.period for s in a.splits] == [o.period for o in owed]
    for split, o in zip(a.splits, owed, strict=True):
        for c in COMPONENTS:
            assert 0 <= split.part(c) <= o.part(c)
            assert split.part(c) == split.part(c).quantize(D("0.01"))
    # the steps in the order the policy ranks them: a step is paid only once every step before it is cleared
    steps = ([(i, c) for i in range(len(owed)) for c in order] if across == "instalment"
             else [(i, c) for c in order for i in range(len(owed))])
    left = a.remaining(owed)
    for before, (i, c) in enumerate(steps):
        if a.splits[i].part(c) > 0:
            assert all(left[j].part(d) == 0 for j, d in steps[:before]), (i, c)
