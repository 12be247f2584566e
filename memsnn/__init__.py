"""memsnn: memristor crossbars running spiking neural networks with local learning rules."""

from ._alloc import tune_allocator
from ._threads import default_threads

tune_allocator()
default_threads()  # one torch thread unless MEMSNN_THREADS / OMP_NUM_THREADS say otherwise (see _threads.py)

__version__ = "0.1.0"
