"""Same key, same numbers, across versions of the code: SHA-256 digests of small runs of every
kind of particle (SDEs with each noise model, real SGD with each minibatch scheme and optimizer,
splitting), recorded before a refactor and checked after it.

Bit-identity is promised for one jax/jaxlib version on one backend: XLA may fuse differently in
another version, which changes the last bits of float32 arithmetic. The digests were recorded
with the jax version in `RECORDED_WITH`; under another version the test is skipped with that
reason (run `python tests/test_digests.py` to print the new digests).
"""

import hashlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxescape as jxe
from helpers import OPTAX_ADAM_NOT_STRICT
from jaxescape import theories


RECORDED_WITH = ("0.10.2", "cpu")

DIGESTS = {
    "float64": "06ad73b276faac58bca1f44d",
    "langevin": "7ef40769183195eb20010cb6",
    "langevin-check-every-7": "7ef40769183195eb20010cb6",
    "langevin-no-correction": "7b2cf38afa34b109fa71d80c",
    "matrix-noise": "ce20d9b7512c547c7d95f3cd",
    "meng": "51c77dfbd7ca6c09199b4ff3",
    "mori": "909dd1178c4eb151cb7ee8da",
    "sgd-adam": "f3ec6fe8e470b09c987fd392",
    "sgd-momentum": "8dec0d0baf89534a3d77abf2",
    "sgd-noisy": "d44c3b223d00cf5003e4a77f",
    "sgd-replacement": "f1a61ba329bd39c5c974d953",
    "sgd-shuffled": "c2faf6675fd3026ffc99fc1f",
    "sgd-shuffled-check-every-7": "c2faf6675fd3026ffc99fc1f",
    "splitting-sde": "a5e90ca76c84edb6a784c615",
    "splitting-sgd": "345203d114f01e5a84a2d6de",
    "two-criteria-3d": "395fbc8627b95ca27397afbe",
    "xie": "db0a259ee2e91b87643609bd",
}


def digest(result) -> str:
    """SHA-256 over every per-particle array of an `EscapeResult` (or named fields)."""
    hasher = hashlib.sha256()
    for name in ("escape_step", "boundary", "censored", "diverged", "position"):
        array = np.ascontiguousarray(np.asarray(getattr(result, name)))
        hasher.update(name.encode() + str(array.dtype).encode() + array.tobytes())
    return hasher.hexdigest()[:24]


def splitting_digest(result) -> str:
    hasher = hashlib.sha256()
    for value in (result.mean_escape_time, result.probability, result.loop_time,
                  result.first_entrance_time, result.reactive_time, result.cost):
        hasher.update(np.float64(value).tobytes())
    hasher.update(np.asarray(result.run_probabilities, np.float64).tobytes())
    return hasher.hexdigest()[:24]


def double_well():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    return landscape, jxe.OverdampedLangevin(landscape, 0.5), jxe.past_saddle(landscape)


def case_langevin(crossing_correction=True, check_every=None):
    landscape, dynamics, criterion = double_well()
    return digest(jxe.simulate(
        dynamics, criterion, landscape.minimum(), jax.random.key(3), num_particles=3000,
        dt=0.02, max_steps=400, crossing_correction=crossing_correction, check_every=check_every,
    ))


def case_two_criteria():
    landscape = jxe.AnisotropicWell(1.0, 4.0, [2.0, 1.0])
    dynamics = jxe.OverdampedLangevin(landscape, 0.4)
    criteria = (jxe.past_saddle(landscape), jxe.OutsideBall(jnp.zeros(3), 1.3))
    return digest(jxe.simulate(
        dynamics, criteria, landscape.minimum(), jax.random.key(4), num_particles=2000,
        dt=0.02, max_steps=300,
    ))


def case_matrix_noise():
    def drift(t, y, parameters):
        return -4 * y * (y**2 - 1) / 4 - parameters

    def diffusion(t, y, parameters):
        return jnp.array([[0.8, 0.3], [0.0, 0.7]])

    dynamics = jxe.GeneralSDE(drift, diffusion, 0.05, noise_type="matrix", noise_dimension=2)
    criterion = jxe.HalfSpace(jnp.array([1.0, 0.0]), 0.3)
    return digest(jxe.simulate(
        dynamics, criterion, jnp.array([-1.0, -1.0]), jax.random.key(5), num_particles=2000,
        dt=0.02, max_steps=300,
    ))


def case_noise_model(name):
    landscape = theories.QuadraticLandscape(jnp.diag(jnp.array([1.0, 0.5])), jnp.zeros(2), 0.1)
    dynamics = {
        "xie": lambda: theories.XieSGDNoise(landscape, 0.1, 2.0),
        "mori": lambda: theories.MoriLossNoise(landscape, 0.1, 2.0),
        "meng": lambda: theories.MengPowerLawNoise(landscape, 0.1, 0.05, 1.0),
    }[name]()
    criterion = jxe.LossAbove(landscape, 0.4)
    return digest(jxe.simulate(
        dynamics, criterion, jnp.zeros(2), jax.random.key(6), num_particles=2000, dt=0.02,
        max_steps=300,
    ))


def regression_problem():
    data = jxe.gaussian_regression_data(jax.random.key(0), num_samples=100, dimension=4)
    model = jxe.LinearRegression(4)
    minimum = jnp.linalg.lstsq(data.inputs, data.targets)[0]
    loss = jxe.TrainingLoss(model, data)
    return data, model, minimum, jxe.LossAbove(loss, 1.3 * loss.loss(minimum))


def case_sgd(replacement=False, optimizer=optax.sgd, options=None, check_every=None):
    data, model, minimum, criterion = regression_problem()
    sgd = jxe.MinibatchSGD(model, data, batch_size=5, learning_rate=0.05, optimizer=optimizer,
                           optimizer_options=options or {}, replacement=replacement)
    return digest(jxe.simulate(
        sgd, criterion, minimum, jax.random.key(7), num_particles=1000, max_steps=200,
        check_every=check_every,
    ))


def case_noisy_sgd():
    data, model, minimum, criterion = regression_problem()
    loss_minimum = float(jxe.TrainingLoss(model, data).loss(minimum))
    sgd = jxe.MinibatchSGD(
        model, data, batch_size=5, learning_rate=None, optimizer_noise=True,
        optimizer=jxe.noisy_sgd(0.05, sigma=0.01, kappa=1.0, minimum_loss=loss_minimum),
    )
    return digest(jxe.simulate(
        sgd, criterion, minimum, jax.random.key(8), num_particles=1000, max_steps=200,
    ))


def case_float64():
    with jax.enable_x64(True):
        landscape, dynamics, criterion = double_well()
        return digest(jxe.simulate(
            dynamics, criterion, jnp.asarray(landscape.minimum(), jnp.float64),
            jax.random.key(9), num_particles=1000, dt=0.02, max_steps=300,
        ))


def case_splitting_sde():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.2)
    return splitting_digest(jxe.estimate_escape_time(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(10), dt=0.02,
        num_replicas=50, num_runs=4, num_levels=64,
    ))


def case_splitting_sgd():
    data = jxe.meng_data(jax.random.key(0))
    shift = float(jxe.meng_shift_for_barrier(data, 0.05))
    inputs, targets = np.asarray(data.inputs, np.float64), np.asarray(data.targets, np.float64)
    optimum = float(np.mean(inputs * targets) / np.mean(inputs**2))
    minimum, top = -shift - optimum, shift + optimum
    sgd = jxe.MinibatchSGD(jxe.MengDoubleWell(shift), data, batch_size=10, learning_rate=0.1,
                           replacement=True)
    criterion = jxe.HalfSpace(jnp.array([1.0]), top + 0.5 * (top - minimum))
    return splitting_digest(jxe.estimate_escape_time(
        sgd, criterion, jnp.array([minimum], data.inputs.dtype), jax.random.key(11),
        num_replicas=50, num_runs=4,
    ))


CASES = {
    "langevin": case_langevin,
    "langevin-no-correction": lambda: case_langevin(crossing_correction=False),
    "langevin-check-every-7": lambda: case_langevin(check_every=7),
    "two-criteria-3d": case_two_criteria,
    "matrix-noise": case_matrix_noise,
    "xie": lambda: case_noise_model("xie"),
    "mori": lambda: case_noise_model("mori"),
    "meng": lambda: case_noise_model("meng"),
    "sgd-shuffled": case_sgd,
    "sgd-shuffled-check-every-7": lambda: case_sgd(check_every=7),
    "sgd-replacement": lambda: case_sgd(replacement=True),
    "sgd-momentum": lambda: case_sgd(options={"momentum": 0.9}),
    "sgd-adam": lambda: case_sgd(optimizer=optax.adam, options={"b1": 0.9}),
    "sgd-noisy": case_noisy_sgd,
    "float64": case_float64,
    "splitting-sde": case_splitting_sde,
    "splitting-sgd": case_splitting_sgd,
}


def _recorded_environment() -> bool:
    return (jax.__version__, jax.default_backend()) == RECORDED_WITH


NOT_STRICT = {"sgd-adam": OPTAX_ADAM_NOT_STRICT}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=NOT_STRICT.get(name, ())) for name in sorted(CASES)
])
def test_same_key_same_numbers_as_recorded(name):
    if not _recorded_environment():
        pytest.skip(f"digests recorded with jax {RECORDED_WITH[0]} on {RECORDED_WITH[1]}; "
                    f"this is jax {jax.__version__} on {jax.default_backend()}")
    assert CASES[name]() == DIGESTS[name]


if __name__ == "__main__":
    selected = sys.argv[1:] or sorted(CASES)
    for name in selected:
        print(f"    {name!r}: {CASES[name]()!r},", flush=True)
