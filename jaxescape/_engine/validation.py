"""Input checks run eagerly, before anything is compiled: each error names the parameter and the
allowed range."""

import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .._particle import AbstractParticleProcess


MAX_STEPS_LIMIT = 2**31 - 1
MAX_PARTICLE_INDEX = 2**32


def check_positive_integer(name: str, value, upper: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}")
    if value < 1 or (upper is not None and value > upper):
        allowed = f"between 1 and {upper}" if upper is not None else ">= 1"
        raise ValueError(f"{name} must be {allowed}, got {value}")
    return int(value)


def check_positive_number(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be positive and finite (> 0), got {value}")
    return number


def check_simulation_inputs(
    dynamics, criteria, initial_position, *, num_particles, dt, max_steps, chunk_size, num_slots,
    check_every, first_particle, keep_positions=True,
):
    """Validates everything `simulate` takes; returns the start point and dt as arrays."""
    if not isinstance(dynamics, AbstractParticleProcess):
        raise TypeError(
            f"dynamics must be a particle process (an SDE such as OverdampedLangevin, or "
            f"MinibatchSGD), got {type(dynamics).__name__}"
        )
    check_positive_integer("num_particles", num_particles)
    if dt is None:
        dt = type(dynamics).default_dt  # e.g. SGD: times in iterations
    if dt is None:
        raise ValueError(
            f"dt is required for {type(dynamics).__name__} (an SDE): a time step > 0"
        )
    check_positive_number("dt", dt)
    check_positive_integer("max_steps", max_steps, MAX_STEPS_LIMIT)
    if chunk_size is not None:  # None: sized to the device (`default_chunk_size`)
        check_positive_integer("chunk_size", chunk_size)
    if check_every is not None:
        check_positive_integer("check_every", check_every)
    if num_slots is not None:
        check_positive_integer("num_slots", num_slots)
    if isinstance(first_particle, bool) or not isinstance(first_particle, numbers.Integral):
        raise TypeError(f"first_particle must be an integer, got {first_particle!r}")
    if first_particle < 0 or first_particle + num_particles > MAX_PARTICLE_INDEX:
        raise ValueError(
            f"first_particle + num_particles must lie in [0, 2^32], got {first_particle} + "
            f"{num_particles}"
        )
    if not isinstance(keep_positions, bool | np.bool_):
        raise TypeError(f"keep_positions must be True or False, got {keep_positions!r}")
    if not criteria:
        raise ValueError("criteria must hold at least one escape criterion")
    if len(criteria) > 127:
        raise ValueError(f"criteria may hold at most 127 criteria, got {len(criteria)}")
    dynamics.check_parameters()

    position = jnp.asarray(initial_position)
    if not jnp.issubdtype(position.dtype, jnp.floating):
        position = position.astype(jnp.result_type(float))
    if position.ndim != 1:
        raise ValueError(
            f"initial_position must have shape (dim,), got shape {position.shape}"
        )
    if not bool(jnp.all(jnp.isfinite(position))):
        raise ValueError(f"initial_position must be finite, got {np.asarray(position)}")
    with np.errstate(over="ignore", under="ignore"):
        dt_in_dtype = np.asarray(float(dt)).astype(position.dtype)
    if not np.isfinite(dt_in_dtype) or dt_in_dtype <= 0:
        raise ValueError(
            f"dt must be positive and finite in the simulation dtype {position.dtype} "
            f"(between {np.finfo(position.dtype).tiny} and {np.finfo(position.dtype).max}), "
            f"got {dt}"
        )
    dt_array = jnp.asarray(dt_in_dtype)
    dynamics.check_start(position)
    for index, criterion in enumerate(criteria):
        try:
            outside = bool(criterion.is_outside(position))
        except jax.errors.JAXTypeError as error:
            raise ValueError(f"criteria[{index}] cannot be evaluated: {error}") from error
        if outside:
            raise ValueError(
                f"initial_position {np.asarray(position)} is already outside the basin: "
                f"criteria[{index}] ({type(criterion).__name__}) holds there; start inside"
            )
    return position, dt_array
