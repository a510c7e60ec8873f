"""Kernels and memory traffic of a compiled XLA program's step loop, read from its text.

For a program written by `accelerator_check.py`'s `compiled_programs` section (or any optimised
HLO text, gzipped or not), each `while` body is taken apart kernel by kernel: every instruction
that launches work (a fusion, a custom call, a copy; not parameters, tuples or bitcasts) is
counted with the bytes of its operands and its result, the traffic it has if nothing stays in
cache between kernels. A slice reads only what it returns, so slices count twice their result.
Kernels are grouped by what they do: matrix products (kernels whose computation holds a `dot`
or a convolution, and library calls), slices, concatenations, copies, reductions, and the
other elementwise kernels. With `--slots` (the pool) and `--steps` (steps per iteration of the
step loop, the body with the most kernels), that loop's traffic is also given per
particle-step, to set against the device's bandwidth (benchmarks/README.md §10).

    python benchmarks/hlo_traffic.py benchmarks/results/compiled-mori-nvidia_h100.hlo.txt.gz \
        [--slots 4096 --steps 2]
"""

import argparse
import collections
import gzip
import pathlib
import re

ELEMENT_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f16": 2, "bf16": 2, "s16": 2, "u16": 2,
                 "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8}
SHAPE = re.compile(r"\b(" + "|".join(ELEMENT_BYTES) + r")\[([\d,]*)\]")
INSTRUCTION = re.compile(r"\s*(?:ROOT )?%([\w.\-]+) = (.*?) ([a-z][\w-]*)\((.*?)\)(?:,|$)")
NO_KERNEL = {"parameter", "get-tuple-element", "tuple", "bitcast", "constant", "after-all",
             "opt-barrier", "while", "conditional", "call"}


def shape_bytes(text: str) -> int:
    """Bytes of every array shape written in `text` (a tuple's elements added)."""
    total = 0
    for element, dims in SHAPE.findall(text):
        count = 1
        for dim in filter(None, dims.split(",")):
            count *= int(dim)
        total += count * ELEMENT_BYTES[element]
    return total


def computations(text: str) -> dict[str, list[str]]:
    """The program's computations: name -> its instruction lines."""
    found, current = {}, None
    for line in text.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if header:
            current = found.setdefault(header.group(1), [])
        elif current is not None and line.startswith("  "):
            current.append(line)
    return found


def loop_bodies(text: str) -> list[str]:
    """The names of the computations that are `while` bodies."""
    return sorted(set(re.findall(r"\bbody=%?([\w.\-]+)", text)))


def category(name: str, opcode: str, line: str, called: list[str]) -> str:
    """What a kernel does, from its name, opcode and the computation it calls (`called`)."""
    if (opcode in ("custom-call", "dot", "convolution")
            or any(re.search(r" (dot|convolution)\(", inner) for inner in called)):
        return "matrix products"
    if "slice" in name or opcode in ("slice", "dynamic-slice"):
        return "slices"
    if "concatenate" in name or opcode == "concatenate":
        return "concatenations"
    if opcode == "copy" or name.startswith("copy"):
        return "copies"
    if "kind=kInput" in line or "reduce" in name:
        return "reductions"
    return "elementwise and other"


def traffic(lines: list[str], found: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    """Kernels and bytes by category for one computation's instructions (`found`: the
    program's computations, for the ones a fusion calls)."""
    shapes, result = {}, collections.defaultdict(lambda: {"kernels": 0, "bytes": 0})
    for line in lines:
        match = INSTRUCTION.match(line)
        if not match:
            continue
        name, shape, opcode, operands = match.groups()
        shapes[name] = shape
        if opcode in NO_KERNEL:
            continue
        calls = re.search(r"\bcalls=%?([\w.\-]+)", line)
        kind = category(name, opcode, line, found.get(calls.group(1), []) if calls else [])
        written = shape_bytes(shape)
        read = (written if kind == "slices" else
                sum(shape_bytes(shapes.get(operand, ""))
                    for operand in re.findall(r"%([\w.\-]+)", operands)))
        result[kind]["kernels"] += 1
        result[kind]["bytes"] += read + written
    return dict(result)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("program", type=pathlib.Path)
    parser.add_argument("--slots", type=int, help="particles in the pool")
    parser.add_argument("--steps", type=int, default=1, help="steps per loop iteration")
    args = parser.parse_args(argv)
    opener = gzip.open if args.program.suffix == ".gz" else open
    with opener(args.program, "rt") as file:
        text = file.read()
    found = computations(text)
    bodies = {body: traffic(found.get(body, []), found)
              for body in loop_bodies(text)}
    kernels = {body: sum(part["kernels"] for part in parts.values())
               for body, parts in bodies.items()}
    step_loop = max(kernels, key=kernels.get, default=None)
    for body, parts in bodies.items():
        if not kernels[body]:
            continue
        total = sum(part["bytes"] for part in parts.values())
        # Per particle-step only for the step loop (the body with the most kernels).
        per_step = args.slots * args.steps if args.slots and body == step_loop else None
        print(f"while body {body}: {kernels[body]} kernels, {total / 1e6:.1f} MB an iteration"
              + (f", {total / per_step / 1e3:.1f} kB a particle-step" if per_step else ""))
        for kind, part in sorted(parts.items(), key=lambda item: -item[1]["bytes"]):
            print(f"  {kind:22s} {part['kernels']:4d} kernels {part['bytes'] / 1e6:10.1f} MB"
                  + (f" {part['bytes'] / per_step / 1e3:8.1f} kB a particle-step"
                     if per_step else ""))


if __name__ == "__main__":
    main()
