"""The one kind of error the scripts print as a single line: a problem the user can fix (a
flag, a path, a file). Anything else is a bug and keeps its traceback."""
import argparse


class UserError(Exception):
    """Printed by run_train.py, run_eval.py and the data commands as `error: <message>`."""


class UnknownName(UserError, KeyError):
    """An unknown model, layer or preset name (also a KeyError, for lookups)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (`error: ...`, exit 2), not the usage block."""

    def error(self, message):
        self.exit(2, f'error: {message} (--help lists the options)\n')
