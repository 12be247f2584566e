"""memsnn: memristor crossbars running spiking neural networks with local learning rules."""

__version__ = "0.1.0"
