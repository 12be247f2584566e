"""memsnn: memristor crossbars running spiking neural networks with local learning rules."""

from ._alloc import tune_allocator

tune_allocator()

__version__ = "0.1.0"
