"""--gpus value -> the devices the towers run on, and the session config that makes them real.

Without a GPU the two towers go on two logical CPU devices (/cpu:0, /cpu:1) created by
ConfigProto(device_count={'CPU': 2}), so the paper's split is real and testable everywhere.
More devices than towers make data-parallel replicas of the whole model: '0,1,2,3' is two
two-tower AlexNets (one per GPU pair), 'cpu:4' the same on four logical CPUs.
"""
from dataclasses import dataclass

from alexnet_tf1.errors import UserError
from alexnet_tf1.tf_compat import list_gpus, tf1


class DeviceError(UserError):
    """A --gpus value this machine cannot honour; the message is one line."""


@dataclass(frozen=True)
class Placement:
    towers: tuple        # one device string per tower of replica 0, e.g. ('/gpu:0', '/gpu:1')
    kind: str            # 'gpu' or 'cpu'
    replicas: tuple = ()  # one `towers`-like tuple per data-parallel replica; () = (towers,)
    cpus: int = 2        # logical CPU devices the session creates

    def __post_init__(self):
        if not self.replicas:
            object.__setattr__(self, 'replicas', (self.towers,))

    def session_config(self, intra_threads=0, inter_threads=0):
        config = tf1.ConfigProto(
            device_count={'CPU': max(2, self.cpus)},
            # CPU placement stays exact so tests see the split; on GPUs a few int ops have no kernel
            allow_soft_placement=self.kind == 'gpu',
            intra_op_parallelism_threads=intra_threads,
            inter_op_parallelism_threads=inter_threads)
        config.gpu_options.allow_growth = True
        return config


def visible_gpu_count():
    return len(list_gpus())


_FORMS = "'auto', 'cpu', 'cpu:N' or GPU ids like '0,1'"


def resolve(gpus='auto', towers=2, n_visible=None):
    """Map '0,1' | '0' | 'cpu' | 'cpu:N' | 'auto' to one device per tower, per replica.

    Up to `towers` ids: one replica, tower t on id t (an id is reused when there are fewer).
    More ids: a multiple of `towers`, consecutive ones form a replica. 'cpu' puts tower t on
    /cpu:t of two logical CPUs; 'cpu:N' makes N logical CPUs and groups them the same way.
    'auto' takes two GPUs, else one, else the CPUs.
    """
    spec = str(gpus).strip().lower()
    if spec == 'cpu':
        return Placement(tuple(f'/cpu:{t % 2}' for t in range(towers)), 'cpu')
    if spec.startswith('cpu:'):
        try:
            n = int(spec[4:])
        except ValueError:
            n = 0
        if n <= 0:
            raise DeviceError(f"--gpus takes {_FORMS}, not {gpus!r}")
        return _grouped([f'/cpu:{i}' for i in range(n)], towers, gpus, 'cpu', cpus=n)
    if n_visible is None:
        n_visible = visible_gpu_count()
    if spec == 'auto':
        if n_visible == 0:
            return resolve('cpu', towers)
        spec = ','.join(str(i) for i in range(min(n_visible, towers)))
    try:
        ids = [int(part) for part in spec.split(',') if part.strip() != '']
    except ValueError:
        raise DeviceError(f"--gpus takes {_FORMS}, not {gpus!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise DeviceError(f"--gpus takes {_FORMS}, not {gpus!r}")
    missing = [i for i in ids if i >= n_visible]
    if missing:
        raise DeviceError(f"--gpus {gpus}: TensorFlow sees {n_visible} GPU(s), so GPU {missing[0]} "
                          f"does not exist here; use --gpus cpu to run on the CPU")
    return _grouped([f'/gpu:{i}' for i in ids], towers, gpus, 'gpu')


def _grouped(devs, towers, spec, kind, cpus=2):
    if len(devs) <= towers:
        return Placement(tuple(devs[t % len(devs)] for t in range(towers)), kind, cpus=cpus)
    if len(devs) % towers:
        raise DeviceError(f"--gpus {spec}: this model has {towers} towers, so a replica takes "
                          f"{towers} devices; give a multiple of {towers}")
    reps = tuple(tuple(devs[i:i + towers]) for i in range(0, len(devs), towers))
    return Placement(reps[0], kind, reps, cpus)
