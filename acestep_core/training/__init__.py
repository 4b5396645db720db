"""Training of ACE-Step v1: LoRA (the original trainer's recipe, faithful by default) on our own modules.

Plain PyTorch: no Lightning, accelerate, peft, diffusers or transformers at run time. Modules:

* :mod:`.lyrics` - training-time lyric tokenization (whole-text language detection, as the original dataset);
"""
