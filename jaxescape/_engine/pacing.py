"""How many rounds one compiled call runs: paced by the clock, not by a count of slot-steps.

The host loop around a compiled pool (`devices.run_wave`, the splitting estimator) gets control
back only between calls: that is where the progress bar moves and where the pool shrinks in the
tail. A fixed count of slot-steps per call suits one cost per slot-step and no other: the
2^24 slot-steps that were a fraction of a second for 1-D Langevin on a CPU were minutes for a
network particle that computes n per-sample gradients each step (benchmarks/README.md §10).
So a call runs about `CALL_SECONDS`: the first runs one round, and each later one scales the
number of rounds by the measured time of the last (at most `MAXIMUM_FACTOR`-fold up or down a
call), skipping calls that compiled. The number of rounds never changes a number: a particle's
noise depends only on (key, particle, step), and a call stops by itself at the first round
where the pool is due to shrink (`pool.advance_chunk`), so the pool's sizes, and the batches
each particle is computed in, follow the particles, not the clock.
"""

CALL_SECONDS = 0.25
MAXIMUM_FACTOR = 8
MAXIMUM_ROUNDS = 2**20


class CallPacer:
    """Rounds per call so that a call lasts about `seconds`.

    Usage: run a call of `pacer.rounds` rounds; `pacer.record(seconds)` with its wall time up
    to the host's first read of its results; call
    `pacer.recompiled()` before a call that compiles (a new pool size), so that its time is not
    taken for the cost of its rounds.
    """

    def __init__(self, seconds: float = CALL_SECONDS):
        self.seconds = float(seconds)
        self.rounds = 1
        self._compiling = True  # the first call compiles

    def recompiled(self) -> None:
        self._compiling = True

    def record(self, elapsed: float) -> None:
        if self._compiling:
            self._compiling = False
            return
        factor = self.seconds / max(float(elapsed), 1e-6)
        factor = min(MAXIMUM_FACTOR, max(1 / MAXIMUM_FACTOR, factor))
        self.rounds = int(min(MAXIMUM_ROUNDS, max(1, round(self.rounds * factor))))
