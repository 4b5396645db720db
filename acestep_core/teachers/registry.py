"""The two REPA teachers of the original ACE-Step v1 trainer: where they come from, their rates, chunking,
feature widths and licences.

Sources: ace-step/ACE-Step@d612523 ``trainer.py`` (``Pipeline.__init__``, ``infer_mert_ssl``,
``infer_mhubert_ssl``: repo ids, 48 kHz -> 24 / 16 kHz, 5 s / 30 s chunks), the model cards (licences), and the
Hub trees: MERT-v1-330M publishes only a pickle on ``main``; its safetensors copy is the (unmerged)
SFconvertbot pull request ``refs/pr/7``. mHuBERT-147 has ``model.safetensors`` on ``main``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import MERT_V1_330M_CONFIG, MHUBERT_147_CONFIG, HubertConfig

__all__ = ["TEACHERS", "TEACHER_NAMES", "TRAINER_SAMPLE_RATE", "TeacherSpec", "licence_notice", "teacher_spec"]

TRAINER_SAMPLE_RATE = 48000  # the trainer's waveforms (target_wavs) are 48 kHz stereo


@dataclass(frozen=True)
class TeacherSpec:
    """One teacher. ``name`` is the trainer's key (``ssl_names`` of the transformer config)."""

    name: str
    display_name: str
    repo_id: str
    revision: str
    sample_rate: int
    chunk_seconds: int
    feature_dim: int
    licence: str
    licence_url: str
    config: HubertConfig  # full size

    @property
    def model_url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}"

    @property
    def folder_name(self) -> str:
        """Sub-folder name in search folders and in our cache (the repository's name)."""
        return self.repo_id.split("/")[-1]

    @property
    def chunk_samples(self) -> int:
        return self.sample_rate * self.chunk_seconds

    @property
    def downsample(self) -> int:
        """48 kHz samples per teacher sample (2 for MERT, 3 for mHuBERT): the trainer's ``wav_lengths // n``."""
        return TRAINER_SAMPLE_RATE // self.sample_rate


TEACHERS: dict[str, TeacherSpec] = {  # in the original's order: MERT first, then mHuBERT
    "mert": TeacherSpec(
        name="mert", display_name="MERT-v1-330M", repo_id="m-a-p/MERT-v1-330M", revision="refs/pr/7",
        sample_rate=24000, chunk_seconds=5, feature_dim=1024, licence="CC-BY-NC-4.0",
        licence_url="https://creativecommons.org/licenses/by-nc/4.0/", config=MERT_V1_330M_CONFIG),
    "m-hubert": TeacherSpec(
        name="m-hubert", display_name="mHuBERT-147", repo_id="utter-project/mHuBERT-147", revision="main",
        sample_rate=16000, chunk_seconds=30, feature_dim=768, licence="CC-BY-NC-SA-4.0",
        licence_url="https://creativecommons.org/licenses/by-nc-sa/4.0/", config=MHUBERT_147_CONFIG),
}
TEACHER_NAMES: tuple[str, ...] = tuple(TEACHERS)


def teacher_spec(name: str) -> TeacherSpec:
    """The spec of ``name`` ("mert" or "m-hubert"); unknown names raise ``KeyError`` listing the known ones."""
    try:
        return TEACHERS[name]
    except KeyError:
        raise KeyError(f"unknown REPA teacher {name!r}; known: {list(TEACHERS)}") from None


def licence_notice(names: tuple[str, ...] | list[str] = TEACHER_NAMES) -> str:
    """The licence notice shown before a teacher is downloaded (also printed by the CLI)."""
    lines = ["REPA teachers are third-party models under NON-COMMERCIAL licences (ACE-Step itself is Apache-2.0):"]
    for name in names:
        spec = teacher_spec(name)
        lines.append(f"  {spec.display_name} ({spec.model_url}): {spec.licence} ({spec.licence_url})")
    lines.append("They are used only as frozen feature extractors for the REPA loss during training. Whether a model "
                 "trained with them inherits restrictions is for you to judge; train with --repa off to avoid them.")
    return "\n".join(lines)
