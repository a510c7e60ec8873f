# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Kramers escape from a double well
#
# Overdamped Langevin dynamics $dx = -L'(x)\,dt + \sqrt{2T}\,dW$ in a tilted quartic double well
# with barrier $\Delta L$ and curvature $k$ at the minimum. For $\Delta L/T \gg 1$ the escape time
# is exponential with mean given by Kramers' law
# $\tau \simeq 2\pi/\sqrt{L''(x_a)|L''(x_b)|}\; e^{\Delta L/T}$; at any noise level the exact mean
# first-passage time is a double integral (Gardiner, THEORY.md §1.4). This notebook simulates
# many particles, fits the exponential, and compares with both.
#
# Set `JAXESCAPE_SMOKE=1` for a quick CPU run.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import jaxescape as jxe


smoke = os.environ.get("JAXESCAPE_SMOKE") == "1"
num_particles = 20_000 if smoke else 1_000_000

landscape = jxe.TiltedDoubleWell(barrier_height=1.0, curvature=4.0)
dynamics = jxe.OverdampedLangevin(landscape, temperature=1 / 3)
criterion = jxe.past_saddle(landscape)
result = jxe.simulate(dynamics, criterion, landscape.minimum(), jax.random.key(0),
                      num_particles=num_particles, dt=0.01, max_steps=10**7, progress=True)

mean, standard_error = jxe.mean_escape_time(result.escape_time)
saddle = float(landscape.saddle()[0])
exact = jxe.exact_mfpt(dynamics, 0.0, reflecting=-2 * saddle, absorbing=float(criterion.offset))
kramers = jxe.kramers_time(1.0, 4.0, float(landscape.saddle_curvature()), 1 / 3)
print(f"simulated {mean:.3f} ± {standard_error:.3f}, exact {exact:.3f}, Kramers {kramers:.3f}")

# %%
density, edges = jxe.escape_time_histogram(result.escape_time, bins=80)
centres = 0.5 * (edges[1:] + edges[:-1])
rate = jxe.exponential_rate_mle(result.escape_time)
plt.semilogy(centres, density, ".", label="simulated")
plt.semilogy(centres, rate.rate * np.exp(-rate.rate * centres), label="fitted exponential")
plt.xlabel("escape time")
plt.ylabel("density")
plt.legend()
plt.show()
