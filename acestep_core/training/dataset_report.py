"""What a training dataset holds, song by song: the audio as trained, the lyrics as tokenized, and every
finding (a warning, or the reason a song cannot be used). Rendered as text for the CLI and ComfyUI, and as a
JSON-able dict.

Thresholds: lyric tokens are cut to :data:`~acestep_core.lyrics.MAX_LYRIC_TOKENS` (4096, the original's cut);
lyrics above :data:`~acestep_core.lyrics.TOKENS_PER_SECOND_LIMIT` tokens per second of trained audio are flagged
as longer than the audio suits (the original trains them anyway, quirk: only the first 240 s of audio).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import AceStepInputError
from ..lyrics import MAX_LYRIC_TOKENS, TOKENS_PER_SECOND_LIMIT, LyricTokenizer
from .audio import MIN_DURATION_S, SILENT_FRACTION_LIMIT, TRAIN_SAMPLE_RATE, PreparedAudio, TrainingAudioError
from .audio import prepare_training_audio as _prepare_audio
from .lyrics import SONG_PROMPT_PATTERN, TrainingLyrics, tokenize_training_lyrics
from .songs import DatasetFormat, DatasetWarning, SongProblem, TrainingSong

__all__ = ["MOSTLY_SILENT_FRACTION", "DatasetReport", "SongAnalysis", "SongReport", "analyse_problem",
           "analyse_song"]

MOSTLY_SILENT_FRACTION = 0.5  # warn (the song is still trained) above this fraction of digital silence
AudioCache = MutableMapping[Path, PreparedAudio]


@dataclass(frozen=True)
class SongReport:
    """One song of the dataset report (all rows of a song repeated in a Hugging Face dataset: ``rows``)."""

    key: str
    usable: bool
    reason: str | None = None  # why the song cannot be used
    source: str = ""  # where it was found: its path below the folder, or "row 3"
    audio_path: str | None = None
    rows: int = 1
    duration_s: float | None = None  # of the file
    trained_duration_s: float | None = None  # after the padding to 3 s and the 240 s crop
    sample_rate: int | None = None  # of the file
    channels: int | None = None  # of the file
    main_language: str | None = None
    lyric_fallback: str | None = None  # set when the main language is unsupported (inference tokenizer used)
    num_tokens: int | None = None  # lyric ids trained on (after the 4096 cut)
    instrumental: bool | None = None
    warnings: tuple[DatasetWarning, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "usable": self.usable, "reason": self.reason, "source": self.source,
                "audio_path": self.audio_path, "rows": self.rows, "duration_s": self.duration_s,
                "trained_duration_s": self.trained_duration_s, "sample_rate": self.sample_rate,
                "channels": self.channels, "main_language": self.main_language,
                "lyric_fallback": self.lyric_fallback, "num_tokens": self.num_tokens,
                "instrumental": self.instrumental, "warnings": [w.to_dict() for w in self.warnings]}


@dataclass(frozen=True, eq=False)
class SongAnalysis:
    """A song's report row plus what a training item needs (empty for an unusable song)."""

    report: SongReport
    lyric_ids: tuple[int, ...] = ()  # cut to 4096
    wav_length: int = 0  # samples at 48 kHz after the crop


def _audio_warnings(audio: PreparedAudio) -> list[DatasetWarning]:
    out = []
    if audio.source_channels > 2:
        out.append(DatasetWarning("channels_cut", f"{audio.source_channels} channels: only the first 2 are trained "
                                  "(as the original); downmix the file to stereo to keep all of them"))
    if audio.padded:
        out.append(DatasetWarning("padded", f"{audio.source_duration_s:.2f} s long: zero-padded at the end to "
                                  f"{MIN_DURATION_S:g} s, as the original"))
    if audio.cropped:
        out.append(DatasetWarning("cropped", f"{audio.source_duration_s:.1f} s long: only the first "
                                  f"{audio.duration_s:g} s are trained (the original's crop, no random window); split "
                                  "the song into parts to train on all of it"))
    if audio.clamped:
        out.append(DatasetWarning("clamped", f"{audio.clamped_samples} samples beyond full scale were clamped to "
                                  "[-1, 1] (the audio clips); lower its level to avoid the distortion"))
    if audio.usable and audio.silent_fraction > MOSTLY_SILENT_FRACTION:
        out.append(DatasetWarning("mostly_silent", f"{audio.silent_fraction:.0%} of the trained samples are digital "
                                  f"silence (the padding included); the original discards a song above "
                                  f"{SILENT_FRACTION_LIMIT:.0%}"))
    return out


def _lyric_warnings(song: TrainingSong, lyrics: TrainingLyrics, trained_s: float) -> list[DatasetWarning]:
    out = []
    if lyrics.instrumental:
        why = ("the lyrics read like a prompt ('write a ... song that genre is')" if SONG_PROMPT_PATTERN.search(
            song.lyrics) else "no lyrics")
        out.append(DatasetWarning("instrumental", f"{why}: trained as instrumental (lyric id [0], as the original)"))
        return out
    if len(lyrics.ids) > MAX_LYRIC_TOKENS:
        out.append(DatasetWarning("lyrics_cut", f"{len(lyrics.ids)} lyric tokens: only the first {MAX_LYRIC_TOKENS} "
                                  "are trained (the original's cut); shorten the lyrics"))
    num_tokens = min(len(lyrics.ids), MAX_LYRIC_TOKENS)
    if num_tokens > TOKENS_PER_SECOND_LIMIT * trained_s:
        out.append(DatasetWarning("lyrics_too_long", f"{num_tokens} lyric tokens for {trained_s:.2f} s of trained "
                                  f"audio (more than {TOKENS_PER_SECOND_LIMIT:g} per second): the lyrics run past what "
                                  "the audio sings; the original trains them anyway. Cut the lyrics to the part the "
                                  "trained audio covers"))
    if lyrics.fallback:
        out.append(DatasetWarning("language_fallback", lyrics.fallback))
    for line in lyrics.dropped_lines:
        out.append(DatasetWarning("line_dropped", f"lyrics line {line[:60]!r} could not be normalised and is left "
                                  "out (as the original); check its characters"))
    return out


def _speaker_warnings(song: TrainingSong) -> list[DatasetWarning]:
    if not song.speaker_emb_path:
        return []
    return [DatasetWarning("speaker_emb_ignored", f"speaker_emb_path {song.speaker_emb_path!r} is ignored: the "
                           "original trainer never loads speaker embeddings (zeros are used, and a non-empty path "
                           "makes it skip the song); we train with zeros too")]


def analyse_problem(problem: SongProblem, rows: int = 1) -> SongAnalysis:
    return SongAnalysis(SongReport(key=problem.key, usable=False, reason=problem.reason, source=problem.source,
                                   audio_path=None if problem.audio_path is None else str(problem.audio_path),
                                   rows=rows))


def _load_audio(path: Path, audio_cache: AudioCache | None) -> PreparedAudio:
    if audio_cache is not None and path in audio_cache:
        return audio_cache[path]
    audio = _prepare_audio(path)
    if audio_cache is not None and audio.usable:
        audio_cache[path] = audio
    return audio


def analyse_song(song: TrainingSong, tokenizer: LyricTokenizer, *, rows: int = 1,
                 audio_cache: AudioCache | None = None) -> SongAnalysis:
    """Prepare the song's audio and lyrics as the original would and report what that found.

    ``audio_cache`` (optional, keyed by audio path) receives the prepared audio of a usable song, so a training
    run does not decode every file twice.
    """
    base = SongReport(key=song.key, usable=False, source=song.source, audio_path=str(song.audio_path), rows=rows)
    try:
        audio = _load_audio(song.audio_path, audio_cache)
    except TrainingAudioError as e:
        return SongAnalysis(replace(base, reason=str(e)))
    base = replace(base, duration_s=round(audio.source_duration_s, 3), trained_duration_s=audio.duration_s,
                   sample_rate=audio.source_sample_rate, channels=audio.source_channels)
    try:
        lyrics = tokenize_training_lyrics(tokenizer, song.lyrics)
    except AceStepInputError as e:
        return SongAnalysis(replace(base, reason=f"lyrics: {e}"))
    ids = lyrics.ids[:MAX_LYRIC_TOKENS]
    warnings = [*song.notes, *_audio_warnings(audio), *_lyric_warnings(song, lyrics, audio.duration_s),
                *_speaker_warnings(song)]
    report = replace(base, usable=audio.usable, reason=audio.discard_reason, main_language=lyrics.main_language,
                     lyric_fallback=lyrics.fallback, num_tokens=len(ids), instrumental=lyrics.instrumental,
                     warnings=tuple(warnings))
    if not audio.usable:
        return SongAnalysis(report)
    return SongAnalysis(report, lyric_ids=ids, wav_length=audio.num_samples)


@dataclass(frozen=True)
class DatasetReport:
    """Every song of a training dataset, usable or not, in dataset order."""

    path: str
    format: DatasetFormat
    songs: tuple[SongReport, ...] = field(default_factory=tuple)

    @property
    def usable(self) -> tuple[SongReport, ...]:
        return tuple(song for song in self.songs if song.usable)

    @property
    def unusable(self) -> tuple[SongReport, ...]:
        return tuple(song for song in self.songs if not song.usable)

    @property
    def trained_duration_s(self) -> float:
        """Seconds of audio in one pass over the usable songs (each song once)."""
        return sum(song.trained_duration_s or 0.0 for song in self.usable)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "songs": [song.to_dict() for song in self.songs],
                "usable": len(self.usable), "unusable": len(self.unusable),
                "rows": sum(song.rows for song in self.songs), "trained_duration_s": self.trained_duration_s,
                "sample_rate": TRAIN_SAMPLE_RATE}

    def to_text(self) -> str:
        """A plain-text table, one line per song plus one per finding (for the CLI and ComfyUI)."""
        width = max((len(song.key) for song in self.songs), default=0)
        return "\n".join([_headline(self), *(line for song in self.songs for line in _song_lines(song, width))])


FORMAT_NAMES = {"folder": "folder", "hf": "Hugging Face dataset"}


def _headline(report: DatasetReport) -> str:
    rows = sum(song.rows for song in report.songs)
    row_text = f" in {rows} rows" if rows != len(report.songs) else ""
    return (f"Training data {report.path} ({FORMAT_NAMES[report.format]}): {len(report.songs)} songs{row_text}, "
            f"{len(report.usable)} usable, {len(report.unusable)} unusable; "
            f"{report.trained_duration_s:.1f} s of audio to train on")


def _song_facts(song: SongReport) -> str:
    facts = []
    if song.duration_s is not None:
        facts.append(f"{song.duration_s:7.2f} s  {song.sample_rate:6d} Hz  {song.channels} ch")
    if song.instrumental:
        facts.append("instrumental")
    elif song.num_tokens is not None:
        language = song.main_language or "?"
        facts.append(f"lyrics {language}{' (fallback)' if song.lyric_fallback else ''}, {song.num_tokens} tokens")
    if song.rows > 1:
        facts.append(f"x{song.rows} rows")
    return "  ".join(facts)


def _song_lines(song: SongReport, key_width: int) -> list[str]:
    status = "ok" if song.usable else "UNUSABLE"
    lines = [f"  {status:8s}  {song.key:{key_width}s}  {_song_facts(song)}".rstrip()]
    if song.reason:
        lines.append(f"            reason: {song.reason}")
    lines += [f"            {w.code}: {w.message}" for w in song.warnings]
    return lines
