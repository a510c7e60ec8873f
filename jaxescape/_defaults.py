"""The defaults shared by the Python API, the command line and TOML files: one source each."""

import functools


# Steps after which a particle still inside is censored.
MAX_STEPS = 10**7
# Particles per compiled chunk of `simulate`.
CHUNK_SIZE = 2**22
# Adaptive multilevel splitting: replicas per run, independent runs, loops per particle.
NUM_REPLICAS = 400
NUM_RUNS = 16


def renamed_keywords(**old_to_new):
    """Accept the keywords of earlier versions under their new names (one name per concept:
    `dim` for a particle's coordinates, `noise_dim` for its Brownian motions), so that existing
    code keeps working."""
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"give {new}= (or its earlier name {old}=), not both")
                    kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate
