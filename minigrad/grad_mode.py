"""Whether operations record a graph for backward.

Inside ``no_grad()`` no op records its inputs or keeps arrays for backward, so
evaluation loops use no more memory than the forward pass itself.
Both classes work as context managers and as decorators.
"""
import functools

_grad_enabled = True


def is_grad_enabled():
    return _grad_enabled


def set_grad_enabled(mode):
    global _grad_enabled
    _grad_enabled = bool(mode)


class _GradMode:
    """Context manager / decorator that sets grad mode and restores the old one."""

    mode = True

    def __enter__(self):
        self.previous = is_grad_enabled()
        set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc_info):
        set_grad_enabled(self.previous)
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
