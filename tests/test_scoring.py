"""Answer scores on hand-made cases, and a differential check (MAWT_SPEC section 4).

`challenge_metric` must behave as the published checker of
nuprl/verbal-reasoning-challenge (lighteval's community task
`verbal_reasoning_challenge`); see the rules in mawt/evaluation/scoring.py's docstring.
"""

import random

import pytest

from mawt.evaluation.scoring import challenge_metric, challenge_strict, drop_think, exact_match, think_closed

CHALLENGE_CASES = [
    # --- basics, case, whole words
    ("The answer is Paris.", "Paris", True),
    ("I think it's PARIS!", "paris", True),  # case is ignored on both sides
    ("parisian", "Paris", False),  # whole words only
    ("Paris's mayor", "Paris", True),  # the apostrophe becomes a space: "paris s mayor"
    ("york new", "New York", False),  # the words of one phrase keep their order
    ("New\n\tYork", "new york", True),  # any whitespace between words
    ("", "paris", False),
    # --- every non-word character is a space in the response
    (r"\boxed{stressed}", "stressed", True),
    ("**Answer:**stressed", "stressed", True),
    ("“stressed”", "stressed", True),  # curly quotes
    ("«stressed»", "stressed", True),
    ("¿stressed?", "stressed", True),
    ("(stressed)", "stressed", True),
    ("new-york", "New York", True),  # a hyphen separates words in the response...
    ("newyork", "New York", False),
    ("t shirt", "T-shirt", True),  # ... and in the gold
    ("tshirt", "T-shirt", False),
    ("usa", "U.S.A.", False),  # dots separate letters: gold is "u s a"
    ("u s a", "U.S.A.", True),
    ("U.S.A.", "USA", False),
    ("dont", "don't", False),  # "don't" is "don t"
    ("don’t", "don't", True),  # curly apostrophe, same words
    ("don t", "don't", True),
    # --- phrases: "," and every ">" split them; all are required, in any order
    ("bear becomes bare", "bear --> bare", True),
    ("bear", "bear --> bare", False),
    ("bear, bare", "bear -> bare", True),
    ("bare, then bear", "bear –> bare", True),  # en-dash arrow, any order
    ("bear", "bear –> bare", False),
    ("bear", "bear —> bare", False),  # em-dash arrow splits too (at its ">")
    ("a bear; a bare", "bear > bare", True),  # a bare ">" splits
    ("bear bare", "bear → bare", True),  # "→" does not split: one phrase "bear bare"
    ("bare and bear", "bear → bare", False),
    ("Alaska and Hawaii", "Hawaii, Alaska", True),
    ("Only Alaska", "Hawaii, Alaska", False),
    ("Ben Stiller and Tinkerbell", "Ben Stiller, Tinkerbell", True),
    ("Tinker bell, Ben Stiller", "Ben Stiller, Tinkerbell", False),
    # --- ";" separates alternatives; any one suffices
    ("It's the Rose", "lily; rose", True),
    ("daisy", "lily; rose", False),
    ("new york city", "New York, city; boston", True),
    ("new city", "New York, city; boston", False),
    # --- a phrase without words (empty alternative, stray separator) matches any response with a word
    ("rome", "paris;", True),
    ("rome", "paris,", False),  # "paris" is still required
    ("paris", "paris,", True),
    ("...", "paris;", False),  # no word at all
    # --- digits, underscores (\w includes "_"), non-ASCII letters (\w is Unicode)
    ("4 calling birds", "4", True),
    ("42", "4", False),
    ("Route 66!", "route 66", True),
    ("x_y", "x y", False),
    ("x_y", "x_y", True),
    ("x y", "x_y", False),
    ("Café", "cafe", False),
    ("café au lait", "Café", True),
    ("CAFÉ", "café", True),
    ("ｐａｒｉｓ", "paris", False),  # no Unicode normalisation: full-width letters are other words
    ("cafe\u0301", "café", False),  # ... nor composition: the combining accent is a non-word character
    # --- thinking
    ("<think>maybe paris</think> It is Rome.", "Paris", False),  # closed thinking is ignored
    ("<think>maybe rome</think> It is Paris.", "Paris", True),
    ("<think>maybe paris", "Paris", True),  # never closed: the whole response is scored
    ("<think>hmm", "think", True),  # ... and the tag itself leaves the word "think"
    ("reasoning about paris</think> Rome", "Paris", False),  # everything before a lone </think>
    ("<think>a</think>Paris<think>b</think>", "Paris", True),  # several blocks
    ("<think>paris</think>rome<think>x</think>", "Paris", False),
    ("<think>paris, as 2 < 3</think> rome", "Paris", True),  # a "<" in thinking: only " 3</think>" goes
    ("<THINK>paris</THINK> rome", "Paris", True),  # tags are case-sensitive
]


@pytest.mark.parametrize("response, gold, expected", CHALLENGE_CASES)
def test_challenge_metric(response, gold, expected):
    assert challenge_metric(response, gold) is expected


STRICT_CASES = [
    ("Paris", "Paris", False, True),
    ("Paris", "Paris", True, False),  # the prompt opened <think> and the response never closed it
    ("reasoning</think> Paris", "Paris", True, True),
    ("reasoning</think> Rome", "Paris", True, False),
    ("<think>maybe paris", "Paris", False, False),  # challenge_metric says True here
    ("<think>a</think> Paris", "Paris", False, True),
    ("<think>a</think> Paris <think>more", "Paris", False, False),  # reopened, never closed
    ("r</think> Paris <think>again", "Paris", True, False),
    ("r</think><think>x</think>Paris", "Paris", True, True),
    ("<THINK>paris</THINK> rome", "Paris", False, True),  # closed (tags found in any case), scored as published
    ("", "Paris", False, False),
]


@pytest.mark.parametrize("response, gold, think_open, expected", STRICT_CASES)
def test_challenge_strict(response, gold, think_open, expected):
    assert challenge_strict(response, gold, think_open) is expected
    assert expected == (think_closed(response, think_open) and challenge_metric(response, gold))


@pytest.mark.parametrize(
    "response, think_open, expected",
    [
        ("", False, True),
        ("", True, False),
        ("plain answer", False, True),
        ("a</think>b", True, True),
        ("a</think>b", False, True),  # nothing was open
        ("<think>a", False, False),
        ("<think>a</think>", False, True),
        ("<think>a</think><think>b", False, False),
        ("x</think>y<think>z", True, False),
        ("<think>a</THINK>", False, True),  # tags in any case
        ("</think><think>", False, False),  # the last tag decides
        ("<think><think>a</think>", False, True),
    ],
)
def test_think_closed(response, think_open, expected):
    assert think_closed(response, think_open) is expected


@pytest.mark.parametrize(
    "response, gold, expected",
    [
        ("Paris", "paris", True),
        ("  paris. ", "Paris", True),  # surrounding punctuation and whitespace
        ('"Paris!"', "paris", True),
        ("“Paris”", "paris", True),  # curly quotes
        ("«Paris»", "paris", True),
        ("¿Paris?", "paris", True),
        ("Paris…", "paris", True),
        ("— Paris –", "paris", True),  # em and en dashes
        ("Paris！", "paris", True),  # full-width punctuation
        ("ＰＡＲＩＳ", "paris", True),  # NFKC: full-width letters
        ("STRASSE", "Straße", True),  # case folding
        ("**Paris**", "paris", True),  # markdown bold
        ("**New** York", "new york", True),
        (r"\boxed{Paris}", "paris", True),
        (r"$\boxed{\text{Paris}}$.", "paris", True),
        (r"**\boxed{St. Louis}**", "St. Louis", True),
        ("The answer is Paris", "Paris", False),  # strict: nothing else
        ("**Answer:** Paris", "Paris", False),
        (r"The answer is \boxed{Paris}", "Paris", False),
        ("rose", "lily; rose", True),
        ("lily rose", "lily; rose", False),
        ("hawaii, alaska", "Hawaii, Alaska", True),
        ("alaska, hawaii", "Hawaii, Alaska", False),  # strict keeps the order
        ("<think>hmm</think>Paris", "Paris", True),
        ("hmm</think>Paris", "Paris", True),
        ("<think>Paris", "Paris", False),
        ("st. louis", "St. Louis", True),
        ("new   york", "New York", True),
        ("", "paris", False),
        ("...", "...", False),  # a gold alternative with nothing left never matches
        ("paris", "; paris", True),
    ],
)
def test_strict_exact_match(response, gold, expected):
    assert exact_match(response, gold) is expected


def test_drop_think_handles_unclosed_reasoning():
    assert drop_think("reasoning without an opening tag</think> answer").strip() == "answer"
    assert drop_think("<think>a</think>x<think>b</think>y").split() == ["x", "y"]
    assert drop_think("<think>a < b</think> answer").strip() == "answer"


# ---------------------------------------------------------------------------------------------
# Differential check: a second implementation of the published rules, built differently from
# mawt.evaluation.scoring (a character scanner for thinking, character classes for words, a sliding window
# over word lists for matching), must agree with challenge_metric on adversarial random inputs.


def _ref_visible(text: str) -> str:
    """Scan left to right; a </think> erases the output back to the last "<" (or <think>) seen."""
    out: list[str] = []
    mark = 0  # where an erase would start
    i = 0
    while i < len(text):
        if text.startswith("</think>", i):
            del out[mark:]
            mark = len(out)
            i += len("</think>")
        elif text.startswith("<think>", i):
            mark = len(out)  # an erase takes the opening tag too
            out.extend("<think>")
            i += len("<think>")
        else:
            out.append(text[i])
            if text[i] == "<":
                mark = len(out)
            i += 1
    return "".join(out)


def _ref_words(text: str) -> list[str]:
    words, current = [], ""
    for c in text.lower():
        if c.isalnum() or c == "_":  # Python's definition of \w
            current += c
        elif current:
            words.append(current)
            current = ""
    return words + [current] if current else words


def _ref_phrases(alternative: str) -> list[list[str]]:
    groups, current = [], ""
    for c in alternative:
        if c in ",>":
            groups.append(current)
            current = ""
        else:
            current += c
    return [_ref_words(g) for g in groups + [current]]


def _ref_contains(words: list[str], phrase: list[str]) -> bool:
    if not phrase:
        return len(words) > 0
    n = len(phrase)
    return any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def _ref_correct(response: str, gold: str) -> bool:
    words = _ref_words(_ref_visible(response))
    return any(all(_ref_contains(words, p) for p in _ref_phrases(alt)) for alt in gold.lower().split(";"))


_WORDS = ["paris", "Paris", "new", "York", "t", "shirt", "bear", "bare", "café", "CAFÉ", "x_y", "42", "4",
          "é", "İstanbul", "straße", "think", "ｐａｒｉｓ"]
_PUNCT = [".", ",", "'", "’", "“", "”", "-", "–", "—", "…", "¿", "!", "*", "**", "_", "(", ")", "\\boxed{", "}",
          "/", "&", "\u0301"]
_ARROWS = ["->", "-->", "–>", "—>", "→", ">", "=>"]
_SPACES = [" ", " ", " ", "\n", "\t", "\u00a0"]
_TAGS = ["<think>", "</think>", "<THINK>", "</Think>", "<", "<thin", "think>"]


def _random_text(rng: random.Random, n: int, weights: list[int]) -> str:
    pools = [_WORDS, _PUNCT, _ARROWS, _SPACES, _TAGS, [";"]]
    return "".join(rng.choice(rng.choices(pools, weights)[0]) for _ in range(n))


def _random_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(_random_text(rng, rng.randint(0, 30), [8, 4, 2, 6, 2, 1]),
             _random_text(rng, rng.randint(1, 8), [10, 3, 3, 4, 0, 1])) for _ in range(count)]


def test_reference_implementation_agrees_with_hand_cases():
    for response, gold, expected in CHALLENGE_CASES:
        assert _ref_correct(response, gold) is expected, (response, gold)


def test_challenge_metric_agrees_with_an_independent_implementation():
    pairs = _random_pairs(600, seed=20250203)
    verdicts = [challenge_metric(r, g) for r, g in pairs]
    disagreements = [(r, g, v) for (r, g), v in zip(pairs, verdicts) if v != _ref_correct(r, g)]
    assert not disagreements, disagreements[:5]
    assert 0.15 < sum(verdicts) / len(verdicts) < 0.85  # both outcomes well represented


def test_strict_is_closed_and_correct_on_random_inputs():
    for response, gold in _random_pairs(300, seed=7):
        for opened in (False, True):
            assert challenge_strict(response, gold, opened) == (
                think_closed(response, opened) and challenge_metric(response, gold))
