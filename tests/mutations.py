"""Break the code in named ways, one at a time, and check that the default-run tests notice.

    python -m tests.mutations                 # every mutation; a line each as it finishes
    python -m tests.mutations --list          # what each one breaks and which tests should catch it
    python -m tests.mutations --only lr-ignored lrn-alpha
    python -m tests.mutations --write docs/mutations.md

Each mutation is one text replacement in one file of a copy of the working tree (the tree
itself is never touched). In that copy the mutation's tests run as the default run does
(`-m "not slow"`); the mutation is caught when at least one of them fails. Before any
mutation the same tests must pass unbroken and every one of them must be in the default run,
so a catch cannot come from a test that was failing anyway or from one the suite skips.
Exit 0 when every mutation is caught, 1 otherwise.
"""
import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tests.mutation_table import MUTATIONS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTEST = [sys.executable, '-m', 'pytest', '-q', '-x', '-m', 'not slow', '-p', 'no:cacheprovider',
          '-o', 'addopts=']


@dataclass(frozen=True)
class Mutation:
    name: str
    breaks: str             # the promise it breaks, as a user would put it
    path: str               # file, relative to the repository
    old: str                # text that must occur exactly once in it
    new: str
    tests: tuple            # pytest node ids (file::test) that should catch it


def table():
    return [Mutation(*row) for row in MUTATIONS]


def tree_copy(dest):
    """The working tree as git sees it (tracked and untracked, not ignored) under dest."""
    files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split('\0')
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)) or dest, exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    return dest


def check_applies(m):
    """The reason m cannot be applied to the tree as it is now, or None."""
    try:
        text = open(os.path.join(ROOT, m.path)).read()
    except OSError as e:
        return f'{m.path}: {e.strerror}'
    n = text.count(m.old)
    return None if n == 1 else f'{m.path}: the text to replace occurs {n} times, not once'


def run_tests(copy, tests, log):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    with open(log, 'w') as out:
        return subprocess.run(PYTEST + list(tests), cwd=copy, env=env, stdout=out,
                              stderr=subprocess.STDOUT).returncode


def collected(copy, tests):
    """The node ids pytest collects from `tests` in the default run (None: collection failed,
    with pytest's output)."""
    run = subprocess.run(PYTEST + ['--collect-only'] + list(tests), cwd=copy,
                         capture_output=True, text=True)
    if run.returncode not in (0, 5):
        return None, run.stdout[-2000:]
    return [line.strip() for line in run.stdout.splitlines() if '::' in line], ''


def outcome(code):
    return {0: 'SURVIVED', 1: 'caught'}.get(code, f'error (pytest exit {code})')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--only', nargs='+', metavar='NAME')
    ap.add_argument('--list', action='store_true')
    ap.add_argument('--write', metavar='FILE.md', help='the table of results, as markdown')
    ap.add_argument('--keep', action='store_true', help='keep the copy and the logs')
    args = ap.parse_args(argv)
    muts = table()
    if args.only:
        unknown = set(args.only) - {m.name for m in muts}
        if unknown:
            print(f"error: no mutation {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        muts = [m for m in muts if m.name in args.only]
    if args.list:
        for m in muts:
            print(f'{m.name}: {m.breaks}\n    {m.path}\n    ' + '\n    '.join(m.tests))
        return 0
    bad = [f'{m.name}: {why}' for m in muts for why in [check_applies(m)] if why]
    if bad:
        print('error: ' + '; '.join(bad), file=sys.stderr)
        return 2
    work = tempfile.mkdtemp(prefix='mutations-')
    copy = tree_copy(os.path.join(work, 'repo'))
    every = sorted({t for m in muts for t in m.tests})
    found, why = collected(copy, every)
    if found is None:
        print(f'error: the tests do not collect:\n{why}', file=sys.stderr)
        return 2
    missing = [t for t in every if not any(f == t or f.startswith(t + '[') for f in found)]
    if missing:
        print('error: not in the default run: ' + ', '.join(missing), file=sys.stderr)
        return 2
    t0 = time.time()
    code = run_tests(copy, every, os.path.join(work, 'unbroken.log'))
    print(f'unbroken: the {len(every)} tests {"pass" if code == 0 else "FAIL"} '
          f'({time.time() - t0:.0f} s)', flush=True)
    if code != 0:
        print(f'error: the tests fail before any mutation; see {work}/unbroken.log',
              file=sys.stderr)
        return 2
    results = []
    for m in muts:
        target = os.path.join(copy, m.path)
        original = open(target).read()
        open(target, 'w').write(original.replace(m.old, m.new))
        t0 = time.time()
        try:
            code = run_tests(copy, m.tests, os.path.join(work, f'{m.name}.log'))
        finally:
            open(target, 'w').write(original)
        results.append((m, outcome(code), time.time() - t0))
        print(f'{m.name}: {outcome(code)} ({results[-1][2]:.0f} s)', flush=True)
    caught = sum(r == 'caught' for _, r, _ in results)
    print(f'{caught} of {len(results)} mutations caught')
    if args.write:
        write_table(args.write, results)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f'logs in {work}')
    return 0 if caught == len(results) else 1


def write_table(path, results):
    from alexnet_tf1.bench.machine import cpu_model
    lines = ['# Mutations: what the default tests catch', '',
             'Each row breaks the code in one way (`python -m tests.mutations --list` shows the '
             'exact edit) and runs the named default-run tests against the broken copy. '
             'Re-made by `python -m tests.mutations --write docs/mutations.md`; this table: '
             f'{time.strftime("%Y-%m-%d")}, {cpu_model()}, Python {platform.python_version()}.',
             '', '| mutation | what it breaks | where | caught by | result |',
             '|---|---|---|---|---|']
    for m, result, _ in results:
        tests = '<br>'.join(f'`{t.split("::")[-1]}`' for t in m.tests)
        lines.append(f'| {m.name} | {m.breaks} | `{m.path}` | {tests} | {result} |')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    open(path, 'w').write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    sys.exit(main())
