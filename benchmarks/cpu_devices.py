"""One JAX CPU device per core, for the benchmark command lines; import it before anything else.

On a CPU, XLA runs one program over all cores by cutting each kernel into per-core pieces and waiting
for all of them, a synchronisation per kernel: hundreds per environment step. Splitting the batch
over one device per core instead runs a whole program per core with nothing shared until the end
(`_harness.sharded_play`): measured +15-50% on the 2-core machine (benchmarks/NOTES.md §8), for
idsjax and the gymnax yardstick alike. The setting must be made before JAX starts its backends, which
importing gymnax (and so idsjax) does; once they are up it is left as it is, with a note on stderr.
"""

from __future__ import annotations

import os
import sys

import jax


def use_every_core() -> int:
    """Ask for one CPU device per core (`jax_num_cpu_devices`); returns the number asked for."""
    cores = os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:
        print("benchmarks: JAX's backends were already started, so the CPU stays one device", file=sys.stderr)
    return cores


use_every_core()
