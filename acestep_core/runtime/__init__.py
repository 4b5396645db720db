"""How the models run, not what they compute: speed options of the denoiser passes (:mod:`.accel`: batched
guidance, CUDA graphs, ``torch.compile``), staged offload and memory estimates for low-VRAM runs
(:mod:`.offload`) and opt-in fp8 transformer weights (:mod:`.quant`)."""
