"""Spreading particles over several devices gives the same numbers as one device.

Eight CPU devices are simulated with `--xla_force_host_platform_device_count=8`, which must be
set before JAX starts, so the multi-device run happens in a subprocess.
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
    assert len(jax.devices()) == 8, jax.devices()
    landscape = jxe.TiltedDoubleWell(1.0, 4.0)
    dynamics = jxe.OverdampedLangevin(landscape, 0.5)
    result = jxe.simulate(
        dynamics, jxe.past_saddle(landscape), landscape.minimum(), jax.random.key(11),
        num_particles={NUM_PARTICLES}, dt=0.01, max_steps=10**6,
    )
    np.savez(sys.argv[1], *result[:-1])
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
