"""Keyed draws: repeatable, independent of batch composition and padding, distributed as the original's."""

from __future__ import annotations

import torch

from acestep_core.training.draws import KeyedDropout, draw_key, prompt_rng, step_draws


def test_same_key_same_draws_and_other_keys_differ() -> None:
    a, b = step_draws(7, 3, [0, 5], 12), step_draws(7, 3, [0, 5], 12)
    for name in ("cfg_text_uniform", "cfg_speaker_uniform", "cfg_lyric_uniform", "noise", "timestep_normal"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(step_draws(8, 3, [0], 12).noise, a.noise[:1])  # another seed
    assert not torch.equal(step_draws(7, 4, [0], 12).noise, a.noise[:1])  # another step
    assert not torch.equal(a.noise[0], a.noise[1])  # another item
    assert len({draw_key(1, 2, 3, p) for p in ("cfg", "noise", "timestep", "prompt")}) == 4


def test_an_items_draws_do_not_depend_on_its_batch_or_padding() -> None:
    together = step_draws(1, 10, [4, 9], 20)
    alone = step_draws(1, 10, [9], 14)  # item 9 alone, in a shorter (unpadded) batch
    assert torch.equal(together.noise[1, ..., :14], alone.noise[0])
    for name in ("cfg_text_uniform", "cfg_lyric_uniform", "timestep_normal"):
        assert torch.equal(getattr(together, name)[1:], getattr(alone, name)), name


def test_distributions_match_the_original() -> None:
    draws = step_draws(0, 0, list(range(400)), 4, logit_mean=0.5, logit_std=2.0)
    u = draws.cfg_text_uniform
    assert bool(((u >= 0) & (u < 1)).all()) and abs(float(u.mean()) - 0.5) < 0.05
    assert abs(float(draws.noise.mean())) < 0.02 and abs(float(draws.noise.std()) - 1.0) < 0.02
    assert abs(float(draws.timestep_normal.mean()) - 0.5) < 0.3
    assert abs(float(draws.timestep_normal.std()) - 2.0) < 0.25


def test_keyed_dropout_repeats_for_recomputation_and_scales_kept_values() -> None:
    x = torch.ones(2, 50, 8)
    dropout = KeyedDropout(0.1, seed=3, step=1, indices=[11, 12])
    first, again = dropout(x, "layer0.attn"), dropout(x, "layer0.attn")
    assert torch.equal(first, again)  # activation checkpointing recomputes the same mask
    assert not torch.equal(dropout(x, "layer1.attn"), first)  # another site, another mask
    kept = first != 0
    assert torch.allclose(first[kept], torch.full_like(first[kept], 1 / 0.9))
    assert 0.05 < float((~kept).float().mean()) < 0.15
    alone = KeyedDropout(0.1, seed=3, step=1, indices=[12])(torch.ones(1, 50, 8), "layer0.attn")
    assert torch.equal(alone[0], first[1])  # independent of the batch
    assert torch.equal(KeyedDropout(0.0, 3, 1, [11, 12])(x, "embed"), x)


def test_prompt_rng_is_keyed() -> None:
    assert prompt_rng(1, 2, 3).random() == prompt_rng(1, 2, 3).random()
    assert prompt_rng(1, 2, 3).random() != prompt_rng(1, 2, 4).random()
