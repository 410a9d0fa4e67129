"""Whether operations record a graph for backward.

Inside ``no_grad()`` no op records its inputs or keeps arrays for backward, so
evaluation loops use no more memory than the forward pass itself.
Both classes work as context managers and as decorators.
"""
import functools

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


def _set_mode(mode):
    global _grad_enabled
    _grad_enabled = bool(mode)


class _GradMode:
    """Context manager / decorator that sets grad mode and restores the old one."""

    mode = True

    def __enter__(self):
        self.previous = is_grad_enabled()
        _set_mode(self.mode)
        return self

    def __exit__(self, *exc_info):
        _set_mode(self.previous)
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with type(self)():
                return function(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Turn graph recording off: ``with minigrad.no_grad(): ...`` or ``@minigrad.no_grad()``."""
    mode = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a ``no_grad`` block."""
    mode = True


class set_grad_enabled(_GradMode):
    """torch.set_grad_enabled: ``set_grad_enabled(False)`` turns recording off from now on, and
    ``with set_grad_enabled(phase == "train"): ...`` turns it on or off for the block, then restores it."""

    def __init__(self, mode):
        self.previous = is_grad_enabled()
        self.mode = bool(mode)
        _set_mode(self.mode)                # at once, as PyTorch does: the plain call form works too

    def __enter__(self):
        return self

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(self.mode):
                return function(*args, **kwargs)
        _set_mode(self.previous)            # decorating is not a call: leave the mode as it was
        return wrapper
