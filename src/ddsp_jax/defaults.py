"""The reference settings of DDSP (the paper and magenta/ddsp), defined once.

Every function and config that takes a sample or frame rate defaults to these.
"""

SAMPLE_RATE = 16000  # Audio samples per second (Hz).
FRAME_RATE = 250  # Control frames per second (Hz): a hop of 64 samples at 16 kHz.

# The training presets' names (``training.config.PRESETS`` holds them), for the command line,
# which lists them without importing JAX.
PRESET_NAMES = ("quick", "nsynth", "nsynth_ae", "solo", "solo-cpu")
