"""argparse types shared by the examples: a bad number stops at the command line with
argparse's usage message, not later inside the training loop."""
import argparse


def _number(kind, ok, what):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
        return v
    parse.__name__ = f"{what} {kind.__name__}"
    return parse


positive_int = _number(int, lambda v: v > 0, "positive")
nonnegative_int = _number(int, lambda v: v >= 0, "non-negative")
positive_float = _number(float, lambda v: v > 0, "positive")
