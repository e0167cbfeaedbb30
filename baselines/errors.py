"""The one error the research kit's command lines report as a sentence (exit code 2)."""


class UsageError(Exception):
    """A bad argument or an unusable checkpoint: message on stderr, exit code 2."""
