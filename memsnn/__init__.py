"""memsnn: memristor crossbars running spiking neural networks with local learning rules."""

from ._alloc import tune_allocator
from ._simd import wide_vectors
from ._threads import default_threads

tune_allocator()
default_threads()  # one torch thread unless MEMSNN_THREADS / OMP_NUM_THREADS say otherwise (see _threads.py)
wide_vectors()  # numba may use 512-bit vectors on AVX-512 CPUs (see _simd.py); MEMSNN_NUMBA_WIDE=0 skips it

__version__ = "0.1.0"
