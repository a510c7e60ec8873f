"""Spreading particles over several devices gives the same numbers as one device.

Eight CPU devices are simulated with `--xla_force_host_platform_device_count=8`, which must be
set before JAX starts, so the multi-device run happens in a subprocess. There the kernel's pool
must be sharded over all eight devices (one `shard_map` program), with one chunk per device
(375 particles each), and again with chunks of 200: two waves, the second one leaving a device
idle.
"""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import jaxescape as jxe


NUM_PARTICLES = 3000


def run_on_this_process():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    return jxe.simulate(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(11),
        num_particles=NUM_PARTICLES, dt=0.01, max_steps=10**6,
    )


SCRIPT = textwrap.dedent(
    f"""
    import sys, jax, numpy as np, jaxescape as jxe
    from jaxescape._engine import devices
    assert len(jax.devices()) == 8, jax.devices()
    advance, pools = devices.advance, set()

    def recording_advance(config, slots, *args, **kwargs):
        pools.add(len(slots.status.sharding.device_set))
        return advance(config, slots, *args, **kwargs)

    devices.advance = recording_advance
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    results = [
        jxe.simulate(
            dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(11),
            num_particles={NUM_PARTICLES}, dt=0.01, max_steps=10**6, chunk_size=chunk_size,
        )
        for chunk_size in (2**22, 200)
    ]
    assert pools == {{8}}, pools
    for one, other in zip(*(result[:-1] for result in results)):
        np.testing.assert_array_equal(one, other)
    np.savez(sys.argv[1], *results[0][:-1])
    """
)


def test_eight_devices_equal_one_device_bit_for_bit(tmp_path):
    output = tmp_path / "eight.npz"
    environment = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(output)], env=environment, check=True, timeout=600
    )
    eight = np.load(output)
    one = run_on_this_process()
    for index, field in enumerate(one[:-1]):
        np.testing.assert_array_equal(eight[f"arr_{index}"], field)
    assert one.escaped.all()


def test_devices_argument_is_checked():
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    with pytest.raises(ValueError, match="devices"):
        jxe.simulate(
            dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(0),
            num_particles=10, dt=0.01, max_steps=10, devices=[],
        )


NETWORK_RUN = textwrap.dedent(
    """
    import equinox as eqx, jax.random as jr, jaxescape as jxe

    def run_networks():
        wine = jxe.load_sklearn_dataset("wine", jr.key(0))
        model = jxe.NetworkModel(eqx.nn.MLP(13, 3, 8, 1, key=jr.key(1)), loss="cross_entropy")
        sgd = jxe.MinibatchSGD(model, wine.train, batch_size=16, learning_rate=0.1)
        return jxe.simulate(sgd, jxe.NeverEscape(), model.initial_parameters, jr.key(2),
                            num_particles=600, max_steps=40)
    """
)

CORES_SCRIPT = "import sys, jax, numpy as np, jaxescape as jxe\n" + textwrap.dedent(
    """
    assert jxe.use_cpu_cores(2) == 2
    assert len(jax.devices()) == 2, jax.devices()
    """
) + NETWORK_RUN + textwrap.dedent(
    """
    np.savez(sys.argv[1], *run_networks()[:-1])
    assert jxe.use_cpu_cores(2) == 2  # the same count again: nothing changes
    try:
        jxe.use_cpu_cores(3)
    except RuntimeError as error:
        assert "before JAX's first computation" in str(error), error
    else:
        raise AssertionError("use_cpu_cores after a computation did not raise")
    """
)


def test_use_cpu_cores_runs_networks_on_two_devices_with_the_same_numbers(tmp_path):
    output = tmp_path / "cores.npz"
    subprocess.run([sys.executable, "-c", CORES_SCRIPT, str(output)], check=True, timeout=600,
                   env={key: value for key, value in os.environ.items() if key != "XLA_FLAGS"})
    two = np.load(output)
    namespace = {}
    exec(NETWORK_RUN, namespace)
    one = namespace["run_networks"]()
    for index, field in enumerate(one[:-1]):
        np.testing.assert_array_equal(two[f"arr_{index}"], field)
    assert one.censored.all()


@pytest.mark.parametrize("count", [0, -2, 1.5, True])
def test_use_cpu_cores_rejects_a_count_that_is_not_a_positive_integer(count):
    with pytest.raises(ValueError, match="count must be a positive integer"):
        jxe.use_cpu_cores(count)
