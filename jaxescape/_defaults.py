"""The defaults shared by the Python API, the command line and TOML files: one source each."""

# Steps after which a particle still inside is censored.
MAX_STEPS = 10**7
# Particles per compiled chunk of `simulate`.
CHUNK_SIZE = 2**22
# Adaptive multilevel splitting: replicas per run, independent runs, loops per particle.
NUM_REPLICAS = 400
NUM_RUNS = 16
