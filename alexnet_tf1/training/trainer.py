"""One machine's run: the paper's recipe in a tf.compat.v1 Session, resumable at any step
(its steps and epochs are loop.py's, shared with cluster.py)."""
import signal
import sys

from alexnet_tf1 import options
from alexnet_tf1.training.loop import Loop
from alexnet_tf1.training.start import Diverged, setup
from alexnet_tf1.tf_compat import session


def run(given):
    """The single-machine loop (run_train.py without --job-name)."""
    prepared, opts, train_dir, prev, state, cfg, placement = setup(given)
    return Trainer(cfg, state, opts, prepared, placement, train_dir).loop(resumed_from=prev)


class Trainer(Loop):
    def __init__(self, cfg, state, opts, prepared, placement, train_dir):
        super().__init__(cfg, state, opts, prepared, placement, train_dir)
        self.build()
        self.sess = session(self.g.graph, placement.session_config())

    def loop(self, resumed_from=None):
        state, opts = self.state, self.opts
        self.begin(resumed_from)
        replicas = self.placement.replicas
        where = ' + '.join(', '.join(towers) for towers in replicas)
        batch = (f"batch {state['batch_size']}" if len(replicas) == 1 else
                 f"{len(replicas)} replicas x batch {state['batch_size']} = effective batch "
                 f"{self.batch}")
        print(f"training {self.cfg.model} on {self.prepared.dataset} ({self.n_train} images, "
              f"{self.cfg.num_classes} classes), towers on {where}, "
              f"{batch}, {state['epochs']} epochs, preset {opts.preset}"
              + ('' if options.kept('precision', state) == 'fp32' else f", {state['precision']}")
              + f", train dir {self.train_dir}")
        stop = _StopRequest()
        try:
            try:
                self.train(stop)
            finally:
                stop.restore()
            if stop.requested:
                path = self.save()
                print(f'interrupted: saved {path}; run the same command again to resume')
                return 130
        except Diverged as d:
            self.diverged(d)
            return 3
        finally:        # whatever the exit, the events are flushed and the session let go
            self.close()
        print(f"done: {state['epoch']} epochs, step {state['global_step']}; checkpoints in "
              f"{self.train_dir}")
        return 0


class _StopRequest:
    """Ctrl-C or SIGTERM finish the current step and save, instead of losing it."""

    def __init__(self):
        self.requested = False
        self._old = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}

    def _handler(self, signum, frame):
        if self.requested:          # a second Ctrl-C means now
            raise KeyboardInterrupt
        self.requested = True
        print('\nstopping after this step (Ctrl-C again to stop at once)...', file=sys.stderr)

    def restore(self):
        for s, h in self._old.items():
            signal.signal(s, h)
