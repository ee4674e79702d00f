"""Learning-rate schedules whose whole state is a small dict, saved in every checkpoint.

plateau (the paper): divide by 10 when the validation error has not improved for `patience`
epochs, at most `max_drops` times. step: divide by 10 every `step_epochs` epochs, likewise.
exponential: times `factor` every `step_epochs` epochs, without end (Inception's 0.94 every 2).
cosine: lr * (1 + cos(pi * t)) / 2, t going from 0 after the warm-up to 1 at `epochs`
(Loshchilov and Hutter 2017), step by step. Any kind can start with a linear warm-up from 0
over `warmup_epochs` (Goyal et al. 2017), also step by step.
"""
import math
from dataclasses import asdict, dataclass


@dataclass
class Schedule:
    kind: str = 'plateau'
    lr: float = 0.01
    factor: float = 0.1
    max_drops: int = 3
    patience: int = 2
    step_epochs: int = 30
    warmup_epochs: float = 0.0
    epochs: int = 0             # cosine: where the rate reaches 0
    drops: int = 0
    best_error: float = float('inf')
    epochs_since_best: int = 0

    def rate(self, position):
        """The rate for the step that ends at `position` epochs (fractional) into the run."""
        lr = self.lr
        if self.kind == 'cosine' and self.epochs > self.warmup_epochs:
            t = (position - self.warmup_epochs) / (self.epochs - self.warmup_epochs)
            lr *= 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, t))))
        if self.kind == 'exponential':
            lr *= self.factor ** math.floor(max(0.0, position) / self.step_epochs + 1e-9)
        if position < self.warmup_epochs:
            lr *= position / self.warmup_epochs
        return lr

    def end_epoch(self, epoch, val_error):
        """Record epoch `epoch` (0-based, just finished); returns True if the rate dropped."""
        improved = val_error is not None and val_error < self.best_error
        if improved:
            self.best_error, self.epochs_since_best = val_error, 0
        else:
            self.epochs_since_best += 1
        if self.drops >= self.max_drops or self.kind in ('cosine', 'exponential'):
            return False
        if self.kind == 'step':
            due = (epoch + 1) % self.step_epochs == 0
        else:
            due = self.epochs_since_best >= self.patience
        if due:
            self.lr *= self.factor
            self.drops += 1
            self.epochs_since_best = 0
        return due

    def state(self):
        d = asdict(self)
        d['best_error'] = None if d['best_error'] == float('inf') else d['best_error']
        return d

    @classmethod
    def from_state(cls, d):
        d = dict(d)
        if d.get('best_error') is None:
            d['best_error'] = float('inf')
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
