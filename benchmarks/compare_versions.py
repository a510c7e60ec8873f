"""Engine and SGD throughput of two versions of jaxescape, alternating in one process.

A refactor can change what XLA fuses, so "no speed lost" is measured side by side: the package at
git revision REV is extracted into a temporary folder under another name and imported next to the
working tree's, and each case runs old, new, old, new, … (best of `--repeats` per version, after
a warm-up that compiles). Machines are shared and noisy, so only the ratio new/old is meaningful,
and only when it lies outside the run-to-run spread of each version.

Cases (particle-steps per second, M/s):
- 1-D tilted double well, overdamped Langevin, no escapes (ΔL/T = 20), with and without the
  crossing correction: benchmarks/engine_throughput.py's `jaxescape` rows;
- the 10-D anisotropic well of benchmarks/peers.py;
- real SGD on linear regression (d = 10, n = 1000, B = 10), per-epoch shuffles and with
  replacement: benchmarks/sgd_throughput.py's rows;
- the per-sample Gaussian chain of xie-networks (`MinibatchNoiseSDE(per_sample_noise=True)` on
  its 30-4-2 tanh MLP at θ*, n = 455, B = 3, η = 0.01), N/2000 particles × 32 steps, without and
  with the crossing correction.

Usage: python benchmarks/compare_versions.py [--revision REV] [--particles N] [--repeats R]
       [--cases NAME,NAME]  (names as printed, comma-separated; default all)
"""

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp


ROOT = Path(__file__).resolve().parent.parent


def import_revision(revision: str, folder: Path):
    """The package `jaxescape` at `revision`, imported as `jaxescape_<revision>`."""
    name = f"jaxescape_{revision.replace('-', '_').replace('~', '_')}"
    archive = subprocess.run(["git", "archive", revision, "jaxescape"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "jaxescape").rename(folder / name)
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def cases(package, num_particles):
    """name -> (function running the case once, particle-steps per call)."""
    landscape = package.TiltedDoubleWell(1.0, 4.0)
    langevin = package.OverdampedLangevin(landscape, 0.05)
    plane = package.past_saddle(landscape)
    well = package.AnisotropicWell(1.0, 4.0, jnp.linspace(1.0, 4.0, 9))
    cold = package.OverdampedLangevin(well, 0.05)
    data = package.gaussian_regression_data(jax.random.key(0), num_samples=1000, dimension=10)
    model = package.LinearRegression(10)
    minimum = jnp.linalg.lstsq(data.inputs, data.targets)[0]
    never = package.NeverEscape()
    steps, sgd_particles = 256, num_particles // 10

    def langevin_run(correction):
        return lambda: package.simulate(
            langevin, plane, landscape.minimum(), jax.random.key(1), num_particles=num_particles,
            dt=0.01, max_steps=steps, crossing_correction=correction,
        )

    def sgd_run(replacement):
        sgd = package.MinibatchSGD(model, data, batch_size=10, learning_rate=0.1,
                                   replacement=replacement)
        return lambda: package.simulate(sgd, never, minimum, jax.random.key(2),
                                        num_particles=sgd_particles, max_steps=100)

    xie_networks = importlib.import_module(f"{package.__name__}._reproductions.xie_networks")
    built = xie_networks.built_problem(0)
    chain = package.MinibatchNoiseSDE(built["dynamics"].model, built["dynamics"].data, 0.01, 3,
                                      replacement=True, per_sample_noise=True)
    chain_particles = max(64, num_particles // 2000)

    def chain_run(correction):
        return lambda: package.simulate(chain, never, built["start"], jax.random.key(4),
                                        num_particles=chain_particles, dt=0.01, max_steps=32,
                                        crossing_correction=correction)

    return {
        "1-D, crossing correction": (langevin_run(True), num_particles * steps),
        "1-D, no correction": (langevin_run(False), num_particles * steps),
        "10-D well": (lambda: package.simulate(
            cold, package.past_saddle(well), well.minimum(), jax.random.key(3),
            num_particles=num_particles // 10, dt=0.01, max_steps=steps,
        ), num_particles // 10 * steps),
        "SGD, per-epoch shuffles": (sgd_run(False), sgd_particles * 100),
        "SGD, with replacement": (sgd_run(True), sgd_particles * 100),
        "per-sample chain": (chain_run(False), chain_particles * 32),
        "per-sample chain + correction": (chain_run(True), chain_particles * 32),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revision", default="HEAD~1")
    parser.add_argument("--particles", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", default=None)
    args = parser.parse_args()
    import jaxescape

    with tempfile.TemporaryDirectory() as folder:
        old = import_revision(args.revision, Path(folder))
        versions = {"old": cases(old, args.particles), "new": cases(jaxescape, args.particles)}
        print(f"{jax.devices()[0].device_kind}, jax {jax.__version__}; old = {args.revision}, "
              f"new = working tree; M particle-steps/s, best of {args.repeats} (all runs)")
        chosen = args.cases.split(",") if args.cases else list(versions["new"])
        for name in chosen:
            rates = {"old": [], "new": []}
            for version in versions.values():
                version[name][0]()  # compile
            for _ in range(args.repeats):
                for label, version in versions.items():
                    run, work = version[name]
                    start = time.perf_counter()
                    run()
                    rates[label].append(work / (time.perf_counter() - start) / 1e6)
            best = {label: max(values) for label, values in rates.items()}
            spread = " | ".join(
                f"{label} " + " ".join(f"{value:.3g}" for value in values)
                for label, values in rates.items()
            )
            print(f"{name:30s} old {best['old']:7.4g}  new {best['new']:7.4g}  "
                  f"new/old {best['new'] / best['old']:.3f}   ({spread})", flush=True)


if __name__ == "__main__":
    main()
