"""Progress a person can read: one updating line on a terminal, plain lines in a log."""
import sys
import time


class Progress:
    def __init__(self, title, total, start=0, every=10, stream=None):
        self.title, self.total, self.every = title, total, max(1, every)
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.images = 0
        self.busy = self.wait = 0.0
        self.done = start
        self.t0 = time.perf_counter()
        self.last = ''

    def step(self, done, n_images, seconds, waited, **figures):
        """Record one step of `n_images` that took `seconds`, `waited` of them for data."""
        self.done, self.images = done, self.images + n_images
        self.busy += seconds
        self.wait += waited
        if self.tty or done % self.every == 0 or done == self.total:
            self._show(figures)

    def _show(self, f):
        rate = self.images / max(self.busy, 1e-9)
        parts = [f'{self.title} step {self.done}/{self.total}']
        if 'loss' in f:
            parts.append(f"loss {f['loss']:.4f}  lr {f['lr']:g}  "
                         f"err@1 {f['top1']:.1%}  err@5 {f['top5']:.1%}")
        left = (self.total - self.done) * self.busy / max(self.done, 1)
        parts.append(f'{rate:.1f} img/s  data wait {self.wait / max(self.busy, 1e-9):.0%}')
        if self.tty:
            parts.append(f'{_bar(self.done, self.total)} {left:.0f}s left')
        self.last = '  '.join(parts)
        if self.tty:
            self.stream.write('\r' + self.last + '\033[K')
        else:
            self.stream.write(self.last + '\n')
        self.stream.flush()

    def finish(self):
        if self.tty and self.last:
            self.stream.write('\n')
            self.stream.flush()


def _bar(done, total, width=20):
    filled = int(width * done / max(total, 1))
    return '[' + '#' * filled + '.' * (width - filled) + ']'
