"""Both answer scores on hand-made cases (MAWT_SPEC section 4)."""

import pytest

from mawt.scoring import challenge_correct, drop_think, exact_match


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("The answer is Paris.", "Paris", True),
        ("<think>maybe Rome? or paris</think> It is Rome.", "Paris", False),  # the think part is ignored
        ("I think it's PARIS!", "paris", True),
        ("parisian", "Paris", False),  # whole words only
        ("Alaska and Hawaii", "Hawaii, Alaska", True),  # every phrase, any order
        ("Only Alaska", "Hawaii, Alaska", False),
        ("bear becomes bare", "bear --> bare", True),
        ("bear", "bear --> bare", False),
        ("It's the Rose", "lily; rose", True),  # any alternative
        ("daisy", "lily; rose", False),
        ("new york city", "New York, city; boston", True),
        ("New-York", "new york", False),  # punctuation is removed, not turned into spaces
        ("dont", "don't", True),
        ("", "paris", False),
    ],
)
def test_challenge_metric(response, gold, expected):
    assert challenge_correct(response, gold) is expected


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("Paris", "paris", True),
        ("  paris. ", "Paris", True),  # surrounding punctuation and whitespace
        ('"Paris!"', "paris", True),
        ("The answer is Paris", "Paris", False),  # strict: nothing else
        ("rose", "lily; rose", True),
        ("lily rose", "lily; rose", False),
        ("hawaii, alaska", "Hawaii, Alaska", True),
        ("alaska, hawaii", "Hawaii, Alaska", False),  # strict keeps the order
        ("<think>hmm</think>Paris", "Paris", True),
        ("st. louis", "St. Louis", True),
    ],
)
def test_strict_exact_match(response, gold, expected):
    assert exact_match(response, gold) is expected


def test_drop_think_handles_unclosed_reasoning():
    assert drop_think("reasoning without an opening tag</think> answer").strip() == "answer"
    assert drop_think("<think>a</think>x<think>b</think>y").split() == ["x", "y"]
