// ACE-Step v1 pack: names shared with the Python side (nodes/web_events.py documents the contract;
// tests/test_web.py checks that both agree). A helper module: no side effects at import.

export const LYRIC_REPORT_KEY = "acestep_lyric_report";
export const WINDOW_KEY = "acestep_window";
export const TIMELINE_OPTION = "acestep_timeline";
export const LYRIC_REPORT_ROUTE = "/acestep/v1/lyric_report";
export const TRAIN_NODE = "AceStepV1TrainLoRA";
export const TRAIN_PROGRESS_EVENT = "acestep.train.progress";
export const TRAIN_PREVIEW_EVENT = "acestep.train.preview";

// Node ids the frontend looks for (stable forever: workflows store them).
export const TEXT_ENCODE_NODE = "AceStepV1TextEncode";
export const REPAINT_NODE = "AceStepV1RepaintWindow";
export const EXTEND_NODE = "AceStepV1ExtendLatent";
export const AUDIO_TO_LATENT_NODE = "AceStepV1AudioToLatent";
export const SAVE_AUDIO_NODE = "AceStepV1SaveAudio";
export const CHECKPOINT_LOADER_NODE = "AceStepV1CheckpointLoader";
export const EMPTY_LATENT_NODE = "AceStepV1EmptyLatent";
export const SAMPLER_NODES = ["AceStepV1Sampler", "AceStepV1FlowEdit"];
