"""Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise."""
import sys
import time


def _clock(seconds):
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m}:{s:02d}'


class Progress:
    def __init__(self, total, done=0, stream=None, label='images', every=5.0):
        self.total, self.done, self.label = total, done, label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = 0.2 if self.tty else every
        self.start = self.last = time.monotonic()
        self.start_done = done

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        rate = (self.done - self.start_done) / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else 0
        frac = self.done / max(self.total, 1)
        text = (f'{self.done}/{self.total} {self.label}  {rate:.0f} {self.label}/s  '
                f'{_clock(left)} left')
        if self.tty:
            bar = '#' * int(30 * frac) + '-' * (30 - int(30 * frac))
            self.stream.write(f'\r[{bar}] {100 * frac:3.0f}%  {text}\x1b[K')
        else:
            self.stream.write(f'prepare: {text}\n')
        self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write('\n')
            self.stream.flush()
