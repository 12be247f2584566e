"""Random-number plumbing: every stochastic function takes a ``torch.Generator`` or an int seed."""

from __future__ import annotations

import torch

def as_generator(generator: torch.Generator | int | None, device: torch.device | str) -> torch.Generator | None:
    """Turn ``generator`` into something ``torch.randn(..., generator=)`` accepts on ``device``.

    An int becomes a fresh generator seeded with it; a generator is returned unchanged (it must
    live on the same device type as the tensors it draws); ``None`` means torch's global RNG.
    """
    device = torch.device(device)
    if generator is None:
        return None
    if isinstance(generator, torch.Generator):
        if generator.device.type != device.type:
            raise ValueError(
                f"generator lives on {generator.device.type!r} but the tensors are on "
                f"{device.type!r}; pass a generator created with torch.Generator(device={device.type!r})"
            )
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(
            f"generator={generator!r} must be a torch.Generator, an int seed or None"
        )
    g = torch.Generator(device=device)
    g.manual_seed(int(generator))
    return g


def randn(shape, *, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def rand(shape, *, generator, device, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator, device=device, dtype=dtype)
