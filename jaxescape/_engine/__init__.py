"""The engine: the driver that moves many particles of any particle process to their escape.

`simulate` / `simulate_chunks` batch a particle process's pure single-particle step with `vmap`
inside a pool of working slots, harvest finished particles and refill the pool, shard the chunks
over devices, and return an `EscapeResult`. `validation` checks every input before anything is
compiled; `extrapolation` runs dt and 2dt and extrapolates to dt → 0; `auto_dt` picks dt from
pilot runs (`simulate`'s dt="auto"); `distributed` runs a share of the particles on each
process of a multi-host program; `cpu_cores` exposes a CPU's cores as devices.

May import: the core modules at the top of the package (`_particle`, `_criteria`, `_noise`,
`_fused`). It never imports a particle family (`_dynamics`, `_sgd`): it knows particles only
through the protocol of `_particle.py`.
"""

from .auto_dt import DtChoice as DtChoice
from .cpu_cores import use_cpu_cores as use_cpu_cores
from .distributed import process_share as process_share, simulate_distributed as simulate_distributed
from .driver import (
    EscapeResult as EscapeResult,
    choose_dt as choose_dt,
    concatenate_results as concatenate_results,
    simulate as simulate,
    simulate_chunks as simulate_chunks,
)
from .extrapolation import (
    ExtrapolatedEscape as ExtrapolatedEscape,
    simulate_extrapolated as simulate_extrapolated,
)
from .sizing import default_check_every as default_check_every, default_num_slots as default_num_slots
