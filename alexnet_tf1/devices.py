"""--gpus value -> the devices the towers run on, and the session config that makes them real.

Without a GPU the two towers go on two logical CPU devices (/cpu:0, /cpu:1) created by
ConfigProto(device_count={'CPU': 2}), so the paper's split is real and testable everywhere.
"""
from dataclasses import dataclass

from .tf_compat import list_gpus, tf1


class DeviceError(Exception):
    """A --gpus value this machine cannot honour; the message is one line."""


@dataclass(frozen=True)
class Placement:
    towers: tuple        # one device string per tower, e.g. ('/gpu:0', '/gpu:1')
    kind: str            # 'gpu' or 'cpu'

    def session_config(self, intra_threads=0, inter_threads=0):
        config = tf1.ConfigProto(
            device_count={'CPU': 2},
            # CPU placement stays exact so tests see the split; on GPUs a few int ops have no kernel
            allow_soft_placement=self.kind == 'gpu',
            intra_op_parallelism_threads=intra_threads,
            inter_op_parallelism_threads=inter_threads)
        config.gpu_options.allow_growth = True
        return config


def visible_gpu_count():
    return len(list_gpus())


def resolve(gpus='auto', towers=2, n_visible=None):
    """Map '0,1' | '0' | 'cpu' | 'auto' to one device per tower.

    '0,1' puts tower t on /gpu:t; '0' puts every tower on /gpu:0; 'cpu' puts tower t on
    /cpu:t; 'auto' takes two GPUs, else one, else the CPUs.
    """
    spec = str(gpus).strip().lower()
    if spec == 'cpu':
        return Placement(tuple(f'/cpu:{t}' for t in range(towers)), 'cpu')
    if n_visible is None:
        n_visible = visible_gpu_count()
    if spec == 'auto':
        if n_visible == 0:
            return resolve('cpu', towers)
        spec = ','.join(str(i) for i in range(min(n_visible, towers)))
    try:
        ids = [int(part) for part in spec.split(',') if part.strip() != '']
    except ValueError:
        raise DeviceError(f"--gpus takes 'auto', 'cpu' or GPU ids like '0,1', not {gpus!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise DeviceError(f"--gpus takes 'auto', 'cpu' or GPU ids like '0,1', not {gpus!r}")
    if len(ids) > towers:
        raise DeviceError(f"--gpus {gpus}: this model has {towers} tower(s), so at most {towers} "
                          f"GPU id(s) are used")
    missing = [i for i in ids if i >= n_visible]
    if missing:
        raise DeviceError(f"--gpus {gpus}: TensorFlow sees {n_visible} GPU(s), so GPU {missing[0]} "
                          f"does not exist here; use --gpus cpu to run on the CPU")
    devices = [f'/gpu:{ids[t % len(ids)]}' for t in range(towers)]
    return Placement(tuple(devices), 'gpu')
