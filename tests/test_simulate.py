"""What `simulate` records per particle: divergence, which boundary was hit, and where.

- A particle whose state becomes non-finite is `diverged`. It is neither escaped nor censored,
  and its boundary is −1.
- With several criteria, `boundary` is the index of the one that fired. The first in the tuple
  wins when several hold at once.
- Without the bridge correction (and always for Predicate, which has none) an escaped particle's
  final position satisfies its criterion exactly.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import jaxescape as jxe
from helpers import assert_within_se


def cubic_drift(t, y, parameters):
    return y**3


def constant_diffusion(t, y, parameters):
    return parameters * jnp.ones_like(y)


def test_blow_up_is_diverged_not_escaped_nor_censored():
    """dy = y³ dt + 0.1 dW from y = 2 explodes at t ≈ 1/8. The escape plane on the other side
    (y <= −10) is never reached; every particle must end non-finite and diverged."""
    dynamics = jxe.GeneralSDE(cubic_drift, constant_diffusion, jnp.float32(0.1))
    left = jxe.HalfSpace(jnp.array([-1.0]), 10.0)
    result = jxe.simulate(
        dynamics, left, jnp.array([2.0]), jax.random.key(0), num_particles=64, dt=0.01,
        max_steps=10_000,
    )
    assert result.diverged.all()
    assert not result.censored.any() and not result.escaped.any()
    assert np.all(result.boundary == -1)
    assert np.all(~np.isfinite(result.position[:, 0]))
    # Euler from 2 with dt = 0.01 overflows float32 after a few dozen steps, well before max_steps.
    assert np.all((result.escape_step > 5) & (result.escape_step < 200))


def negative_quartic(y, parameters):
    return -jnp.sum(y**4)


def test_divergence_and_escape_split_by_symmetry():
    """L = −y⁴ from y = 0 (a degenerate maximum). Noise picks a side. Going right, the state blows
    up to +inf, which is a divergence. Going left, it passes the plane y <= −10 while still
    finite, which is an escape through boundary 0. By symmetry each happens with probability
    1/2. Tolerance: 4 binomial SE."""
    landscape = jxe.FunctionLandscape(negative_quartic, 1)
    dynamics = jxe.OverdampedLangevin(landscape, 0.1)
    left = jxe.HalfSpace(jnp.array([-1.0]), 10.0)
    n = 4096
    result = jxe.simulate(
        dynamics, left, jnp.zeros(1), jax.random.key(1), num_particles=n, dt=0.01,
        max_steps=100_000, num_slots=1024,
    )
    assert not result.censored.any()
    assert np.all(result.escaped == ~result.diverged)
    finite = np.isfinite(result.position[:, 0])
    np.testing.assert_array_equal(finite, result.escaped)
    assert np.all(result.position[result.escaped, 0] <= -10.0)
    assert np.all(result.boundary[result.escaped] == 0)
    assert np.all(result.boundary[result.diverged] == -1)
    assert abs(result.diverged.mean() - 0.5) < 4 * math.sqrt(0.25 / n)


def quadratic(y, curvature):
    return 0.5 * curvature * jnp.sum(y**2)


def harmonic(dim, temperature=0.5):
    landscape = jxe.FunctionLandscape(quadratic, dim, jnp.float32(1.0))
    return landscape, jxe.OverdampedLangevin(landscape, temperature)


def bridge_fraction_of_escapes(dt, curvature=1.0, temperature=0.5, plane=1.0, num_points=801):
    """Exact fraction of escapes that the bridge credits (final position inside) for the
    Euler–Maruyama chain y' = y − k y dt + √(2T dt) ξ from 0 between the planes ±`plane`.

    From y inside, a step ends beyond a plane with probability p_out(y); it ends inside at y' and
    the bridge fires with probability 1 − (1 − p₊)(1 − p₋), p± = exp(−2 d±(y) d±(y')/(2T dt))
    (d± the distances to the planes), else the particle survives to y'. The chain's occupation
    density F of surviving positions solves F = K(0, ·) + ∫ F(x) K(x, ·) dx (K the surviving
    kernel); the fraction is E[p_in] / E[p_in + p_out] over the occupation measure (the point
    mass at 0 plus F). Trapezoid rule on `num_points` nodes: 801 agree with 4001 to 10⁻⁵.
    """
    nodes = np.linspace(-plane, plane, num_points)
    weights = np.full(num_points, nodes[1] - nodes[0])
    weights[[0, -1]] /= 2
    variance = 2 * temperature * dt

    def step(x):
        mean = x * (1 - curvature * dt)
        density = scipy.stats.norm.pdf(nodes[None, :], mean[:, None], math.sqrt(variance))
        no_bridge = 1.0
        for side in (1.0, -1.0):
            distances = (plane - side * x[:, None]) * (plane - side * nodes[None, :])
            no_bridge = no_bridge * (1 - np.exp(-2 * distances / variance))
        outside = (scipy.stats.norm.sf(plane, mean, math.sqrt(variance))
                   + scipy.stats.norm.cdf(-plane, mean, math.sqrt(variance)))
        return density * no_bridge, (density * (1 - no_bridge)) @ weights, outside

    survive, bridged, outside = step(nodes)
    survive_0, bridged_0, outside_0 = step(np.zeros(1))
    occupation = np.linalg.solve(np.eye(num_points) - (weights[:, None] * survive).T, survive_0[0])
    bridged = bridged_0[0] + (weights * occupation) @ bridged
    return bridged / (bridged + outside_0[0] + (weights * occupation) @ outside)


@pytest.mark.parametrize("crossing_correction", [True, False])
def test_two_planes_around_a_symmetric_well_record_the_side(crossing_correction):
    """Harmonic well k = 1 at T = 0.5, with planes at y = +1 (criterion 0) and y = −1
    (criterion 1), so ΔL/T = 1. Half the particles leave on each side (4 binomial SE). The
    recorded boundary matches the side of the final position. Without the bridge, that position
    is beyond the plane. With it, a bridged particle may stop just inside, and the bridge picks
    the plane with the larger crossing probability, i.e. the nearer one."""
    _, dynamics = harmonic(1)
    right = jxe.HalfSpace(jnp.array([1.0]), 1.0)
    left = jxe.HalfSpace(jnp.array([-1.0]), 1.0)
    n = 20_000
    result = jxe.simulate(
        dynamics, (right, left), jnp.zeros(1), jax.random.key(2), num_particles=n, dt=0.02,
        max_steps=10**6, num_slots=4096, crossing_correction=crossing_correction,
    )
    assert result.escaped.all() and np.all(result.escape_step >= 1)
    assert set(np.unique(result.boundary)) == {0, 1}
    position = result.position[:, 0]
    np.testing.assert_array_equal(result.boundary == 0, position > 0)
    if crossing_correction:
        # The bridge fires for 53 % (exact chain, 0.5 for driftless steps; the drift −y pulls
        # ends back inside). Binomial SE 0.0035, no bias: the target is the discrete chain's.
        inside = np.abs(position) < 1.0
        assert_within_se(inside.mean(), math.sqrt(inside.mean() * (1 - inside.mean()) / n),
                         bridge_fraction_of_escapes(0.02), num_se=4,
                         message="fraction of escapes credited by the bridge")
    else:
        assert np.all(position[result.boundary == 0] >= 1.0)
        assert np.all(position[result.boundary == 1] <= -1.0)
    assert abs(np.mean(result.boundary == 0) - 0.5) < 4 * math.sqrt(0.25 / n)


def below_diagonal(y, margin):
    """Escaped once y₀ − y₁ >= margin."""
    return y[0] - y[1] >= margin


def test_ball_loss_and_predicate_criteria_and_first_one_wins():
    """2-D harmonic well (k = 1, T = 0.5) with three criteria, in this order:

    0. Predicate y₀ − y₁ >= 1.2: a half-plane at distance 0.85 towards −45°.
    1. LossAbove 1.0: the circle |y| = √2.
    2. OutsideBall, centre (0.5, 0), radius 1.2: it reaches within 0.7 of the origin on the left,
       and lies 1.7 out on the right.

    Each criterion is the first to hold in some directions, so all three occur. The run has no
    bridge correction (LossAbove and OutsideBall have one by default). The final position of a
    particle with boundary k therefore satisfies
    criterion k and none of the criteria before it: the first one that holds wins.
    """
    landscape, dynamics = harmonic(2)
    criteria = (
        jxe.Predicate(below_diagonal, jnp.float32(1.2)),
        jxe.LossAbove(landscape, 1.0),
        jxe.OutsideBall(jnp.array([0.5, 0.0]), 1.2),
    )
    result = jxe.simulate(
        dynamics, criteria, jnp.zeros(2), jax.random.key(4), num_particles=3000, dt=0.02,
        max_steps=10**6, crossing_correction=False,
    )
    assert result.escaped.all() and np.all(result.escape_step >= 1)
    y = result.position.astype(np.float64)
    holds = np.stack([
        y[:, 0] - y[:, 1] >= 1.2,
        0.5 * np.sum(y**2, axis=1) >= 1.0,
        np.sum((y - [0.5, 0.0]) ** 2, axis=1) >= 1.2**2,
    ])
    boundary = result.boundary
    assert set(np.unique(boundary)) == {0, 1, 2}
    assert all(np.mean(boundary == k) > 0.05 for k in range(3))
    for k in range(3):
        hit = boundary == k
        assert np.all(holds[k, hit]), k
        assert not np.any(holds[:k, hit]), k
    # The engine's own criteria agree on the final positions.
    for k, criterion in enumerate(criteria):
        outside = np.asarray(jax.vmap(criterion.is_outside)(jnp.asarray(result.position)))
        np.testing.assert_array_equal(outside, holds[k])
    # Particles need a few steps to travel the distance (a loose check on step counting).
    assert np.median(result.escape_step) > 10
