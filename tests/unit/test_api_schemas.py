"""The patterns the control plane's schema publishes agree with the rules they stand for."""

from __future__ import annotations

import random
import re

import pytest

from lastgood.api.schemas import REF, digits_up_to, not_blank
from lastgood.domain.errors import InvalidInput
from lastgood.domain.versions import parse_ref


@pytest.mark.parametrize("maximum", [0, 1, 7, 9, 10, 19, 100, 205, 1000, 2**31 - 1])
def test_digits_up_to_matches_exactly_the_numbers_up_to_the_maximum(maximum: int) -> None:
    pattern = re.compile(f"^{digits_up_to(maximum)}$")
    rng = random.Random(maximum)
    numbers = [*range(2100), maximum - 1, maximum, maximum + 1,
               *(rng.randrange(10**12) for _ in range(3000))]
    for n in (n for n in numbers if n >= 0):
        assert bool(pattern.match(str(n))) == (n <= maximum), n
        assert bool(pattern.match(f"000{n}")) == (n <= maximum), n


def test_not_blank_is_what_strip_keeps() -> None:
    pattern = re.compile(not_blank())
    for code in range(0x10000):
        char = chr(code)
        assert bool(pattern.search(char)) == bool(char.strip()), hex(code)
    assert pattern.search(" \t\u3000 why \n")
    assert not pattern.search(" \u2029\x1c\t")


@pytest.mark.parametrize("text", ["1", "007", "2147483647", "v1.4.2", "1.0", "12a", "a", "A-1+b"])
def test_a_ref_the_schema_accepts_is_one_the_registry_reads(text: str) -> None:
    assert re.match(REF, text)
    assert parse_ref(text) is not None


@pytest.mark.parametrize("text", ["2147483648", "99999999999", "-1", "+1", ".v1", "v 1", "", "ü"])
def test_a_ref_the_schema_refuses_is_out_of_range_or_not_a_tag(text: str) -> None:
    assert not re.match(REF, text)
    if not text.isdigit():
        with pytest.raises(InvalidInput):
            parse_ref(text)
