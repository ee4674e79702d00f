"""Progress a person can read: one redrawn line on a terminal, plain lines in a log.

Progress counts training steps (training/loop.py), Counter counts prepared images
(data/prepare.py); both write through _Line.
"""
import sys
import time


class _Line:
    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ''

    def write(self, text):
        self.last = text
        self.stream.write('\r' + text + '\033[K' if self.tty else text + '\n')
        self.stream.flush()

    def finish(self):
        if self.tty and self.last:
            self.stream.write('\n')
            self.stream.flush()


class Progress(_Line):
    """Training steps on stdout: a line every `every` steps in a log, every step on a tty."""

    def __init__(self, title, total, start=0, every=10, stream=None):
        super().__init__(stream or sys.stdout)
        self.title, self.total, self.every = title, total, max(1, every)
        self.images = 0
        self.busy = self.wait = 0.0
        self.done = start

    def step(self, done, n_images, seconds, waited, **figures):
        """Record one step of `n_images` that took `seconds`, `waited` of them for data."""
        self.done, self.images = done, self.images + n_images
        self.busy += seconds
        self.wait += waited
        if self.tty or done % self.every == 0 or done == self.total or 'note' in figures:
            self._show(figures)

    def _show(self, f):
        rate = self.images / max(self.busy, 1e-9)
        parts = [f'{self.title} step {self.done}/{self.total}']
        if 'loss' in f:
            parts.append(f"loss {f['loss']:.4f}  lr {f['lr']:g}  "
                         f"err@1 {f['top1']:.1%}  err@5 {f['top5']:.1%}")
        left = (self.total - self.done) * self.busy / max(self.done, 1)
        parts.append(f'{rate:.1f} img/s  data wait {self.wait / max(self.busy, 1e-9):.0%}')
        if 'note' in f:
            parts.append(f['note'])
        if self.tty:
            parts.append(f'{_bar(self.done, self.total)} {left:.0f}s left')
        self.write('  '.join(parts))


class Counter(_Line):
    """Items done of a total on stderr: redrawn 5 times a second on a tty, every `every`
    seconds in a log (and at the end)."""

    def __init__(self, total, done=0, stream=None, label='images', every=5.0):
        super().__init__(stream or sys.stderr)
        self.total, self.done, self.label = total, done, label
        self.every = 0.2 if self.tty else every
        self.start = self.shown = time.monotonic()
        self.start_done = done

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if now - self.shown >= self.every or self.done >= self.total:
            self.shown = now
            rate = (self.done - self.start_done) / max(now - self.start, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else 0
            text = (f'{self.done}/{self.total} {self.label}  {rate:.0f} {self.label}/s  '
                    f'{_clock(left)} left')
            frac = self.done / max(self.total, 1)
            self.write(f'{_bar(self.done, self.total, 30)} {100 * frac:3.0f}%  {text}'
                       if self.tty else f'prepare: {text}')


def _bar(done, total, width=20):
    filled = min(width, int(width * done / max(total, 1)))
    return '[' + '#' * filled + '.' * (width - filled) + ']'


def _clock(seconds):
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


class LossWatch:
    """Flags a training loss that jumps far above its recent level, long before it is NaN.

    A step is a spike when its cross-entropy is more than `factor` times the recent level, the
    90th percentile of the last `window` steps, and above it by more than `margin` nats. The
    percentile, not the median, because a batch's loss near the end of training is mostly 0
    with the odd hard example: on real digits the median flagged one step in 40. The first
    `window` // 2 steps only fill the window.
    """

    def __init__(self, window=50, factor=2.0, margin=1.0):
        self.window, self.factor, self.margin = window, factor, margin
        self.recent = []

    def check(self, loss):
        """The recent level if `loss` is a spike, else None; then remembers `loss`."""
        spike = None
        if len(self.recent) >= self.window // 2:
            level = float(sorted(self.recent)[(len(self.recent) * 9) // 10])
            if loss > self.factor * level and loss - level > self.margin:
                spike = level
        self.recent = (self.recent + [float(loss)])[-self.window:]
        return spike
