"""Differentiable operations, one topic a file. Each op is a Function subclass
(forward and backward on raw arrays, side by side) plus a lowercase wrapper."""
