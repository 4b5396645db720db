"""The one home of the sampling choice lists (schedulers, guidance formulas, tasks): the core, the CLI and the
nodes all offer and check exactly these names (upstream ``ACEStepPipeline.__call__`` spellings)."""

from __future__ import annotations

from typing import Literal

__all__ = ["CFG_TYPES", "EDIT_SCHEDULERS", "PIPELINE_TASKS", "SCHEDULERS", "SOURCE_TASKS", "TASKS", "CfgType",
           "SchedulerName", "TaskName"]

SchedulerName = Literal["euler", "heun", "pingpong"]
SCHEDULERS: tuple[SchedulerName, ...] = ("euler", "heun", "pingpong")
EDIT_SCHEDULERS: tuple[SchedulerName, ...] = ("euler", "pingpong")  # FlowEdit runs Euler or PingPong steps

CfgType = Literal["apg", "cfg", "cfg_star"]
CFG_TYPES: tuple[CfgType, ...] = ("apg", "cfg", "cfg_star")

TaskName = Literal["text2music", "retake", "repaint", "extend", "edit", "audio2audio"]
# Every task a user can ask for. audio2audio is upstream's ``task="text2music"`` + ``audio2audio_enable``.
TASKS: tuple[TaskName, ...] = ("text2music", "retake", "repaint", "extend", "edit", "audio2audio")
# The values of upstream's ``task`` argument (GenerationParams.task).
PIPELINE_TASKS: tuple[TaskName, ...] = ("text2music", "retake", "repaint", "extend", "edit")
SOURCE_TASKS: tuple[TaskName, ...] = ("repaint", "extend", "edit")  # tasks that need source audio
