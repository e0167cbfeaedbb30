"""The errors the research kit's command lines report as one sentence: usage (exit code 2), non-finite training (1)."""


class UsageError(Exception):
    """A bad argument or an unusable checkpoint: message on stderr, exit code 2."""


class NonFiniteError(Exception):
    """Training produced a NaN or an infinity: message on stderr, exit code 1, no result reported."""
