"""benchmarks/hlo_traffic.py: the kernels and bytes of a compiled program's loop body, on a
program compiled here and on the H100 program stored from a lease."""

import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import pytest


BENCHMARKS = pathlib.Path(__file__).parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import hlo_traffic  # noqa: E402


def test_shape_bytes_adds_every_array_of_a_tuple():
    assert hlo_traffic.shape_bytes("f32[4096,17610]{1,0}") == 4 * 4096 * 17610
    assert hlo_traffic.shape_bytes("(s32[], pred[7]{0}, bf16[2,3]{1,0})") == 4 + 7 + 12
    assert hlo_traffic.shape_bytes("token[]") == 0


def test_a_compiled_loop_body_counts_its_product_and_its_traffic():
    def loop(x, w):
        return jax.lax.fori_loop(0, 3, lambda _, x: jnp.tanh(x @ w), x)

    x, w = jnp.ones((64, 128)), jnp.ones((128, 128))
    text = jax.jit(loop).lower(x, w).compile().as_text()
    found = hlo_traffic.computations(text)
    parts = [hlo_traffic.traffic(found[body], found) for body in hlo_traffic.loop_bodies(text)]
    products = sum(part.get("matrix products", {}).get("kernels", 0) for part in parts)
    moved = sum(kind["bytes"] for part in parts for kind in part.values())
    assert products == 1
    # At least the product's operands and result: x and tanh(x·w) (64 × 128) and w (128 × 128).
    assert moved >= 4 * (2 * 64 * 128 + 128 * 128)


def test_the_stored_h100_mori_program_moves_909_kB_a_particle_step(capsys):
    program = BENCHMARKS / "results" / "compiled-mori-nvidia_h100.hlo.txt.gz"
    if not program.exists():
        pytest.skip("the stored H100 program is not in this checkout")
    hlo_traffic.main([str(program), "--slots", "4096", "--steps", "2"])
    out = capsys.readouterr().out
    body = next(line for line in out.splitlines() if "kB a particle-step" in line
                and line.startswith("while body") and "52 kernels" in line)
    assert "908.9 kB a particle-step" in body
    assert re.search(r"matrix products +16 kernels", out)
