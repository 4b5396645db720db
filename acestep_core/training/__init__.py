"""Training of ACE-Step v1: LoRA (the original trainer's recipe, faithful by default) on our own modules.

Plain PyTorch: no Lightning, accelerate, peft, diffusers or transformers at run time. Modules:

* :mod:`.lyrics` - training-time lyric tokenization (whole-text language detection, as the original dataset);
* :mod:`.audio` - the original's audio preparation (48 kHz stereo, clamp, 3 s padding, silence check, 240 s crop);
* :mod:`.prompts` - the per-sample prompt draw (tag shuffle + recaption choice, 256 characters);
* :mod:`.dataset` - ``load_training_dataset`` (a folder of songs, :mod:`.dataset_folder`, or the original's
  Hugging Face dataset, :mod:`.dataset_hf`), the report of every song (:mod:`.dataset_report`) and the samples
  and their batches (:mod:`.batch`); records and parsing rules in :mod:`.songs`;
* :mod:`.prepare` - cached latents (and teacher features); :mod:`.lora` - the trainable adapters;
* :mod:`.step` - the original's loss (CFG dropout, timesteps, x0 loss, REPA via :mod:`.repa`), its draws keyed by
  (seed, step, item) in :mod:`.draws`;
* :mod:`.optim` - AdamW + schedule + clipping (:mod:`.adam8bit`: the 8-bit AdamW option);
* :mod:`.loop` - ``TrainingRun`` (one loop for 1 or N processes, :mod:`.distributed`), its files (:mod:`.save`,
  :mod:`.state`, :mod:`.run_files`, :mod:`.plot`) and previews (:mod:`.preview`); :mod:`.session` sets a run up
  from paths (CLI and node); settings in :mod:`.config` (choice lists in :mod:`.choices`), memory in
  :mod:`.memory`.
"""
