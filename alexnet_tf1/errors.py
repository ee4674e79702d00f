"""The one kind of error the scripts print as a single line: a problem the user can fix (a
flag, a path, a file). Anything else is a bug and keeps its traceback."""
import argparse


class UserError(Exception):
    """Printed by every command (run_train.py, run_eval.py, the python -m ones) as
    `error: <message>`, exit code 2."""


class UnknownName(UserError, KeyError):
    """An unknown model, layer or preset name (also a KeyError, for lookups)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (`error: ...`, exit 2), not the usage block."""

    def error(self, message):
        self.exit(2, f'error: {message} (--help lists the options)\n')


def at_least(low, kind=int, strict=False):
    """An argparse type: a `kind` number >= low (> low when strict). argparse puts the flag's
    name in front of the message, so the one line names both the flag and the value."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"{text}: must be {'>' if strict else '>='} {low}")
        return value
    parse.__name__ = kind.__name__
    return parse


def comma_list(kind, example, choices=None):
    """An argparse type: a comma-separated list of at least one `kind` (seeds 0,1,2), each
    one of `choices` when given. argparse applies it to a string default too."""
    def parse(text):
        try:
            values = [kind(v.strip()) for v in text.split(',') if v.strip()]
        except ValueError:
            values = []
        if not values:
            raise argparse.ArgumentTypeError(f'{text!r}: expected {example}')
        unknown = [v for v in values if choices is not None and v not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {unknown[0]!r}; one of "
                                             f"{', '.join(choices)}")
        return values
    parse.__name__ = 'list'
    return parse
