"""The `jaxescape` command line.

    jaxescape run [--config FILE] [options]  the Kramers-validation experiment (no options:
                                             the default experiment)
    jaxescape reproduce NAME [--size S]      a registered reproduction (`--list` lists them)
    jaxescape sweep FILE.toml [--output DIR] a parameter sweep into a resumable result store
    jaxescape runs [DIR]                     past runs under DIR (default runs) with status
    jaxescape report RUN_DIR                 rebuild a sweep's figures and report.md

Command-line options override the values of the config file. Invalid configurations print
`jaxescape: error: <message>` to stderr and exit with status 2 before anything is simulated.
"""

import argparse
import difflib
import inspect
import math
import os
import sys
import textwrap

from . import _defaults


PROG = "jaxescape"
EXIT_USAGE = 2


class _Failure(Exception):
    """A user error: printed as `jaxescape: error: ...`, exit status 2."""


def _integer(text: str) -> int:
    """An integer; 1e6 and 1_000_000 are accepted."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if not (math.isfinite(number) and number.is_integer()):
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}")
    return int(number)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None


def _number_list(text: str) -> tuple[float, ...]:
    """Comma-separated numbers, e.g. 0.5,0.4,0.3333."""
    items = [item.strip() for item in text.split(",")]
    if items and items[-1] == "":  # tolerate a trailing comma
        items.pop()
    return tuple(_number(item) for item in items)


def _add_cpu_devices_option(parser) -> None:
    parser.add_argument("--cpu-devices", type=_integer, metavar="N",
                        help="run on N CPU devices, one chunk of particles each (default: one "
                        "per core; the numbers do not depend on N)")


def _use_cpu_devices(count: int | None) -> None:
    """One CPU device per core (or `count`), before JAX starts (`use_cpu_cores`); where JAX has
    already started in this process (a call of `main` from Python), the default keeps its
    devices."""
    if count is not None and count < 1:
        raise _Failure(f"cpu-devices must be an integer >= 1, got {count}")
    from ._engine.cpu_cores import use_cpu_cores

    try:
        use_cpu_cores(count)
    except RuntimeError:
        if count is not None:
            raise _Failure("cpu-devices: JAX has already started its devices in this "
                           "process") from None


def _add_run_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the Kramers-validation experiment (no options: the default experiment)",
        description="Simulate overdamped Langevin escape from a 1-D minimum at several "
        "temperatures and compare the mean first-passage time with the exact quadrature and "
        "Kramers' law. Options override the config file; unset options keep the file's value "
        "or the default.",
    )
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file whose top-level keys are the option names with "
                        "underscores (e.g. loss_scale = 2.0, temperatures = [0.5, 0.4])")
    parser.add_argument("--landscape", metavar="NAME",
                        help="double-well (default) or styblinski-tang")
    parser.add_argument("--barrier", type=_number, help="double well: ΔL > 0 (default 1.0)")
    parser.add_argument("--curvature", type=_number,
                        help="double well: L'' at the minimum, > 0 (default 4.0)")
    parser.add_argument("--asymmetry", type=_number,
                        help="double well: asymmetry r > 1 (default 2.0, symmetric)")
    parser.add_argument("--sharpness", type=_number,
                        help="Styblinski-Tang: sharpness k > 0 (default 1.0)")
    parser.add_argument("--loss-scale", type=_number,
                        help="Styblinski-Tang: loss factor > 0 (default 1.0; barrier 25.2 x this)")
    parser.add_argument("--temperatures", type=_number_list, metavar="T1,T2,...",
                        help="comma-separated temperatures > 0 (default 0.5,0.4,0.3333,0.2857: "
                        "ΔL/T = 2, 2.5, 3, 3.5)")
    parser.add_argument("--particles", type=_integer, help="particles per level (default 1e6)")
    parser.add_argument("--dt", type=_number, help="time step > 0 (default 0.01)")
    parser.add_argument("--max-steps", type=_integer,
                        help="censor particles still inside after this many steps (default 1e7)")
    parser.add_argument("--seed", type=_integer, help="random seed in [0, 2^32) (default 0)")
    parser.add_argument("--output", metavar="DIR",
                        help="run directory (default runs/kramers-YYYYmmdd-HHMMSS)")
    parser.add_argument("--no-crossing-correction", dest="crossing_correction",
                        action="store_const", const=False,
                        help="no Brownian-bridge crossing correction")
    parser.add_argument("--no-extrapolate", dest="extrapolate", action="store_const",
                        const=False, help="no second run at 2·dt, no extrapolation to dt → 0 "
                        "(cost 1 instead of about 1.5)")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                        help="no progress bars")
    parser.add_argument("--method", choices=("direct", "splitting"), default="direct",
                        help="direct simulation (default) or adaptive multilevel splitting "
                        "(written as a sweep run: see jaxescape report)")
    parser.add_argument("--replicas", type=_integer,
                        help="splitting: replicas per run, >= 2 "
                        f"(default {_defaults.NUM_REPLICAS})")
    parser.add_argument("--runs", type=_integer,
                        help=f"splitting: independent runs, >= 2 (default {_defaults.NUM_RUNS})")
    _add_cpu_devices_option(parser)
    parser.set_defaults(handler=_run)


def _reproduction_summary(function) -> str:
    """The first paragraph of a reproduction's docstring on one line: one sentence."""
    paragraph = (inspect.getdoc(function) or "").split("\n\n")[0]
    return " ".join(paragraph.split())


def _add_reproduce_parser(subparsers) -> None:
    from ._reproductions import REPRODUCTIONS

    width = max(map(len, REPRODUCTIONS), default=0)
    listing = "\n".join(
        textwrap.fill(_reproduction_summary(function), 79, initial_indent=f"  {name:<{width}}  ",
                      subsequent_indent=" " * (width + 4), break_on_hyphens=False)
        for name, function in sorted(REPRODUCTIONS.items()))
    description = textwrap.fill(
        "Run a reproduction of a published experiment. It simulates the paper's setting, "
        "compares every point with the exact quadrature and the paper's prediction, and writes "
        "results.json, results.md and NAME.png into the output directory. A declared "
        "reproduction is a sweep with an analysis step: killed and rerun with the same command, "
        "it computes only the missing points; `report DIR` rebuilds its files; `--spec` prints "
        "its sweep file, to copy, change and run with `sweep`.", 79)
    parser = subparsers.add_parser(
        "reproduce",
        help="run a registered reproduction of a published experiment",
        description=description,
        epilog=f"reproductions:\n{listing}\n\nexample: {PROG} reproduce xie --size smoke",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="the reproduction's name")
    parser.add_argument("--list", action="store_true", help="list the reproductions and exit")
    parser.add_argument("--size", default="default",
                        help="smoke (seconds), default (minutes on a CPU) or large (a GPU)")
    parser.add_argument("--seed", type=_integer, default=0, help="random seed (default 0)")
    parser.add_argument("--output", metavar="DIR",
                        help="output directory (default runs/reproduce-NAME-SIZE-seedSEED for a "
                             "declared reproduction, where a rerun resumes; else "
                             "runs/NAME-YYYYmmdd-HHMMSS)")
    parser.add_argument("--spec", action="store_true",
                        help="print the reproduction's sweep file (TOML) and exit")
    parser.add_argument("--shard", metavar="I/N", default="0/1",
                        help="run only the points with index I mod N (a declared reproduction "
                             "on a job array; `report DIR` when all are done)")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars")
    _add_cpu_devices_option(parser)
    parser.set_defaults(handler=_reproduce)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="JAX Monte Carlo simulation of SGD/SDE particles escaping loss minima.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run_parser(subparsers)
    _add_reproduce_parser(subparsers)
    _add_sweep_parsers(subparsers)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


_RUN_OPTIONS = ("landscape", "barrier", "curvature", "asymmetry", "sharpness", "loss_scale",
                "temperatures", "particles", "dt", "max_steps", "seed", "output",
                "crossing_correction", "extrapolate", "progress")


def _run(args: argparse.Namespace) -> int:
    from ._experiments.config import ConfigError, load_config, make_config
    from ._experiments.kramers import run_kramers_experiment

    overrides = {name: getattr(args, name) for name in _RUN_OPTIONS
                 if getattr(args, name) is not None}
    other_method = {"particles": "direct", "replicas": "splitting", "runs": "splitting"}
    for name, method in other_method.items():
        if method != args.method and getattr(args, name) is not None:
            raise _Failure(f"--{name} applies to --method {method} only")
    try:
        if args.config is not None:
            config = load_config(args.config, **overrides)
        else:
            config = make_config(overrides, "command line")
        if args.method == "direct":
            run_kramers_experiment(config)
        else:
            _run_splitting(config, args)
    except ConfigError as error:
        raise _Failure(str(error)) from None
    return 0


def _run_splitting(config, args: argparse.Namespace) -> None:
    from ._experiments.kramers import make_run_directory
    from ._experiments.sweep import splitting_sweep
    from ._experiments.sweep_run import plan_points, run_sweep

    sweep = splitting_sweep(config, replicas=args.replicas, runs=args.runs)
    plan_points(sweep)  # every check before a directory is made
    run_sweep(sweep, make_run_directory(config.output, "splitting"), progress=config.progress)


def _add_sweep_parsers(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run a parameter sweep (TOML) into a resumable result store",
        description="Run every point of a sweep file (see examples/sweep.toml). Rerunning the "
        "same command resumes an interrupted sweep: only unfinished points are computed.",
    )
    parser.add_argument("config", metavar="FILE", help="the sweep's TOML file")
    parser.add_argument("--output", metavar="DIR",
                        help="run directory (default: the file's output, else runs/NAME)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the sweep and list its points; simulate nothing")
    parser.add_argument("--shard", metavar="I/N", default="0/1",
                        help="run only the points whose index is I mod N, into the same run "
                        "directory (a job array on a shared file system: --shard "
                        "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT); report works on the "
                        "union")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars")
    _add_cpu_devices_option(parser)
    parser.set_defaults(handler=_sweep)
    parser = subparsers.add_parser("runs", help="list past runs with their status",
                                   description="List the run directories under DIR (default "
                                   "runs): complete, partial k of n, or corrupted (named).")
    parser.add_argument("directory", nargs="?", default="runs", metavar="DIR")
    parser.set_defaults(handler=_runs)
    parser = subparsers.add_parser("report", help="rebuild a sweep's figures and report.md",
                                   description="Rebuild the figures and report.md of a sweep "
                                   "run directory from its stored results (no simulation).")
    parser.add_argument("directory", metavar="RUN_DIR")
    parser.set_defaults(handler=_report)


def _sweep(args: argparse.Namespace) -> int:
    from ._experiments.config import ConfigError
    from ._experiments.store import CorruptedFileError
    from ._experiments.sweep import load_sweep
    from ._experiments.sweep_run import (
        add_references,
        check_shard,
        default_directory,
        describe_point,
        plan_points,
        run_sweep,
    )

    try:
        sweep = load_sweep(args.config, output=args.output)
        shard = check_shard(args.shard)
        if not args.dry_run:
            run_sweep(sweep, progress=args.progress, shard=shard)
            return 0
        swept = sweep.swept()
        for plan in plan_points(sweep, shard):
            exact = add_references(plan)["exact_mfpt"]
            print(f"point {plan['index']}: {describe_point(plan['point'], swept)}; exact MFPT "
                  + ("none (no quadrature for this point)" if exact is None else f"{exact:.5g}"))
        print(f"{sweep.method} sweep of {len(sweep.expand())} points into "
              f"{default_directory(sweep)} (dry run: nothing simulated)")
    except (ConfigError, CorruptedFileError) as error:
        raise _Failure(str(error)) from None
    return 0


def _runs(args: argparse.Namespace) -> int:
    from ._experiments.runs import format_runs, list_runs

    try:
        print(format_runs(list_runs(args.directory)))
    except FileNotFoundError as error:
        raise _Failure(str(error)) from None
    return 0


def _report(args: argparse.Namespace) -> int:
    from ._experiments.report import REPORT_FILE, write_report
    from ._experiments.store import CorruptedFileError

    try:
        print(write_report(args.directory))
    except (CorruptedFileError, FileNotFoundError) as error:
        raise _Failure(str(error)) from None
    print(f"report written to {os.path.join(args.directory, REPORT_FILE)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from . import _reproductions

    registry = _reproductions.REPRODUCTIONS
    available = ", ".join(sorted(registry)) or "none"
    if args.list:
        width = max(map(len, registry), default=0)
        for name in sorted(registry):
            print(f"{name:<{width}}  {_reproduction_summary(registry[name])}".rstrip())
        return 0
    if args.name is None:
        raise _Failure(f"reproduce needs a NAME; available reproductions: {available}")
    if args.name not in registry:
        close = difflib.get_close_matches(args.name, list(registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _Failure(f"unknown reproduction {args.name!r}{hint} (available: {available})")
    sizes = getattr(_reproductions, "SIZES", None)
    if sizes is not None and args.size not in sizes:
        raise _Failure(f"size must be one of {', '.join(sizes)}, got {args.size!r}")
    if args.seed < 0:
        raise _Failure(f"seed must be an integer >= 0, got {args.seed}")

    sweep = _reproductions.declared_sweep(args.name, args.size, args.seed)
    if sweep is not None:
        return _reproduce_declared(args, sweep)
    if args.spec or args.shard != "0/1":
        raise _Failure(f"reproduction {args.name!r} is not declared as a sweep: --spec and "
                       "--shard apply to declared reproductions only")

    from ._experiments.kramers import make_run_directory

    output = make_run_directory(args.output, args.name)
    registry[args.name](output, args.size, args.seed, args.progress)
    print(f"{args.name} ({args.size}) done; results in {output}")
    return 0


def _reproduce_declared(args: argparse.Namespace, sweep) -> int:
    """A declared reproduction: its sweep printed, or run (resumable, sharded) with its analysis."""
    from ._experiments.config import ConfigError
    from ._experiments.sweep import sweep_to_toml
    from ._experiments.sweep_run import check_shard, run_sweep

    if args.spec:
        print(sweep_to_toml(sweep), end="")
        return 0
    try:
        shard = check_shard(args.shard)
    except ConfigError as error:
        raise _Failure(str(error)) from None
    output = args.output or os.path.join("runs",
                                         f"reproduce-{args.name}-{args.size}-seed{args.seed}")
    try:
        run_sweep(sweep, output, progress=args.progress, shard=shard)
    except ConfigError as error:
        raise _Failure(str(error)) from None
    print(f"{args.name} ({args.size}) done; results in {output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `jaxescape` console script and of `python -m jaxescape`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "cpu_devices"):
            _use_cpu_devices(args.cpu_devices)
        return args.handler(args)
    except _Failure as failure:
        print(f"{PROG}: error: {failure}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
