"""The training prompt of one sample, as the original trainer's dataset picks it (``Text2MusicDataset.process``).

The song's tags (``["music"]`` when it has none) are shuffled with ``random.shuffle`` and joined with ", ";
the candidates are the song's non-empty string recaptions, in their stored order, followed by that joined
tag string; one is picked with ``random.choice`` and cut to 256 characters. The draws come from the
:class:`random.Random` the caller passes (the training loop keys it by seed, global step and dataset index),
in the original's order: the shuffle's draws, then the choice's.

Ported from ace-step/ACE-Step@d612523 acestep/text2music_dataset.py (Apache-2.0).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["DEFAULT_TAGS", "MAX_PROMPT_CHARS", "TAG_SEPARATOR", "choose_prompt", "prompt_candidates"]

DEFAULT_TAGS = ("music",)  # the prompt of a song without tags
TAG_SEPARATOR = ", "
MAX_PROMPT_CHARS = 256  # characters, not tokens (the text encoder also stops at 256 tokens)

Recaption = Mapping[str, object] | Iterable[tuple[str, object]]


def _recaption_strings(recaption: Recaption | None) -> list[str]:
    """The non-empty string values, in order (the original ignores every other value)."""
    if recaption is None:
        return []
    pairs = recaption.items() if isinstance(recaption, Mapping) else recaption
    return [value for _, value in pairs if isinstance(value, str) and value]


def _shuffled_tags(tags: Sequence[str], rng: random.Random) -> str:
    shuffled = list(tags) if len(tags) > 0 else list(DEFAULT_TAGS)
    rng.shuffle(shuffled)
    return TAG_SEPARATOR.join(shuffled)


def prompt_candidates(tags: Sequence[str], recaption: Recaption | None, rng: random.Random) -> list[str]:
    """The list ``random.choice`` picks from: recaption strings, then the tags shuffled with ``rng``."""
    return [*_recaption_strings(recaption), _shuffled_tags(tags, rng)]


def choose_prompt(tags: Sequence[str], recaption: Recaption | None, rng: random.Random) -> str:
    """One training prompt for a song (see the module docstring); consumes ``rng`` as the original does.

    Args:
        tags: the song's tags (the dataset's ``tags`` column / the prompt file's comma-separated tags).
        recaption: alternative captions (a dict or ``(name, text)`` pairs); non-strings and "" are ignored.
        rng: the sample's random stream.
    Returns:
        The prompt, at most 256 characters.
    """
    if isinstance(tags, str):
        raise TypeError(f"tags must be a sequence of strings, got the string {tags[:40]!r}; split it on commas")
    return rng.choice(prompt_candidates(tags, recaption, rng))[:MAX_PROMPT_CHARS]
