"""`jaxescape runs`: the run directories under a folder and their status."""

import json
import os

from .store import MANIFEST
from .sweep_run import SWEEP_FILE, sweep_status


def run_status(path: str) -> dict | None:
    """Kind, status and details of one run directory, or None if it is not one."""
    if os.path.exists(os.path.join(path, MANIFEST)) or os.path.exists(
            os.path.join(path, SWEEP_FILE)):
        status = sweep_status(path)
        detail = status.get("method", "")
        if status.get("swept"):
            detail += " over " + ", ".join(status["swept"])
        return {"kind": "sweep", "status": status["status"], "problems": status["problems"],
                "detail": detail}
    summary_path = os.path.join(path, "summary.json")
    if not os.path.exists(summary_path):
        return None
    try:  # a `jaxescape run` (Kramers validation) directory
        with open(summary_path, "rb") as file:
            summary = json.loads(file.read())
        done, total = len(summary["levels"]), len(summary["config"]["temperatures"])
        complete = summary["complete"] is True
    except (ValueError, KeyError, TypeError) as error:
        return {"kind": "kramers", "status": "corrupted",
                "problems": {"summary.json": f"unreadable ({error})"}, "detail": ""}
    status = "complete" if complete else f"partial {done} of {total}"
    return {"kind": "kramers", "status": status, "problems": {},
            "detail": f"{total} temperatures"}


def list_runs(directory) -> list[dict]:
    """The status of `directory` if it is a run, else of each run directory directly inside it."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory!r} is not a directory")
    own = run_status(directory)
    if own is not None:
        return [{"path": directory, **own}]
    rows = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        status = run_status(path) if os.path.isdir(path) else None
        if status is not None:
            rows.append({"path": path, **status})
    return rows


def format_runs(rows: list[dict]) -> str:
    """One line per run; corrupted files are named below their run."""
    if not rows:
        return "no runs found"
    table = [("run", "kind", "status", "details")] + [
        (row["path"], row["kind"], row["status"], row["detail"]) for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(3)]
    lines = []
    for line, row in zip(table, [None, *rows]):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths))
                     + "  " + line[3])
        for name, problem in (row or {}).get("problems", {}).items():
            lines.append(f"    corrupted: {os.path.join(row['path'], name)}: {problem}")
    return "\n".join(line.rstrip() for line in lines)
