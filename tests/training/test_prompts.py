"""The per-sample prompt draw (the original's tag shuffle + recaption choice)."""

from __future__ import annotations

import json
import random
from itertools import permutations

import pytest

from acestep_core.training.prompts import DEFAULT_TAGS, MAX_PROMPT_CHARS, choose_prompt, prompt_candidates
from tests.parity import PARITY_DIR

TAGS = ("pop", "female vocals", "upbeat", "synth")
RECAPTION = {"simplified": "pop", "descriptive": "a bright synth pop song", "use_cases": "", "analysis": {"x": 1}}


def _original(tags: list[str], recaption: dict[str, object], rng: random.Random) -> str:
    """The original's process() prompt lines, written out as a reference."""
    prompt = list(tags) or ["music"]
    rng.shuffle(prompt)
    joined = ", ".join(prompt)
    valid = [v for v in recaption.values() if isinstance(v, str) and len(v) > 0]
    valid.append(joined)
    return rng.choice(valid)[:256]


@pytest.mark.parametrize("seed", range(50))
def test_same_draws_as_the_original(seed: int) -> None:
    ours, theirs = random.Random(seed), random.Random(seed)
    assert choose_prompt(TAGS, RECAPTION, ours) == _original(list(TAGS), RECAPTION, theirs)
    assert ours.getstate() == theirs.getstate(), "the stream must be consumed exactly as the original does"


@pytest.mark.parametrize("seed", range(50))
def test_always_one_of_the_candidates(seed: int) -> None:
    prompt = choose_prompt(TAGS, RECAPTION, random.Random(seed))
    shuffles = {", ".join(p) for p in permutations(TAGS)}
    assert prompt in {"pop", "a bright synth pop song"} | shuffles


def test_every_candidate_is_reachable() -> None:
    seen = {choose_prompt(TAGS, RECAPTION, random.Random(seed)) for seed in range(400)}
    assert {"pop", "a bright synth pop song"} <= seen and len(seen) > 10


def test_deterministic_for_a_given_state() -> None:
    rng = random.Random(7)
    state = rng.getstate()
    first = [choose_prompt(TAGS, RECAPTION, rng) for _ in range(5)]
    rng.setstate(state)
    assert [choose_prompt(TAGS, RECAPTION, rng) for _ in range(5)] == first


def test_no_tags_means_music() -> None:
    assert choose_prompt((), None, random.Random(0)) == "music" == DEFAULT_TAGS[0]
    assert prompt_candidates([], {"a": "", "b": None}, random.Random(0)) == ["music"]


def test_cut_to_256_characters() -> None:
    long_caption = "x" * 300
    prompts = {choose_prompt(("a",) * 100, {"long": long_caption}, random.Random(s)) for s in range(20)}
    assert all(len(p) == MAX_PROMPT_CHARS for p in prompts) and "x" * MAX_PROMPT_CHARS in prompts


def test_recaption_pairs_keep_their_order() -> None:
    pairs = (("one", "first"), ("two", "second"))
    assert prompt_candidates(["t"], pairs, random.Random(0)) == ["first", "second", "t"]


def test_the_tags_argument_is_not_changed() -> None:
    tags = ["a", "b", "c"]
    choose_prompt(tags, None, random.Random(1))
    assert tags == ["a", "b", "c"]


def test_a_string_of_tags_is_refused() -> None:
    with pytest.raises(TypeError, match="sequence of strings.*split it on commas"):
        choose_prompt("pop, rock", None, random.Random(0))  # type: ignore[arg-type]


def test_recorded_prompts_are_candidates() -> None:
    """cases.json -> dataset_items holds the prompt the original drew per item (its random stream is unknown)."""
    training = PARITY_DIR / "training"
    if not training.is_dir():
        pytest.skip("golden data not found")
    items = json.loads((training / "cases.json").read_text())["dataset_items"]
    rows = {row["keys"]: row for row in json.loads((training / "dataset_index.json").read_text())}
    assert items
    for item in items:
        row = rows[item["key"]]
        tags = row["tags"]
        possible = {choose_prompt(tags, row["recaption"], random.Random(seed)) for seed in range(200)}
        assert item["prompt"] in possible, item
