"""What a benchmark ran on, so that figures from different machines can be told apart: the CPU,
oneDNN's version, ISA and threads (as oneDNN itself reports them), TF's thread counts, and
whether other work shared the machine (other processes' CPU use just before, and the spread of
the matmul timings during the run)."""
import functools
import os
import re
import subprocess
import sys
import time

# oneDNN prints these once, at its first primitive, when ONEDNN_VERBOSE is set
_PROBE = 'import tensorflow as tf; tf.matmul(tf.ones((64, 64)), tf.ones((64, 64))).numpy()'


def cpu_model():
    from alexnet_tf1.nn.cpu_kernels import cpuinfo
    name = cpuinfo().get('model name')
    if name:
        return name
    import platform
    return platform.processor() or platform.machine()


# AMD's families by core (AMD's own family/model tables); "AMD EPYC" alone names all of them
_AMD_CORES = {23: 'Zen / Zen 2', 26: 'Zen 5'}


def cpu_id():
    """{'vendor', 'family', 'model', 'core'}: the CPU's family and model numbers (from
    /proc/cpuinfo; None elsewhere), and for AMD the core generation they name, since a cloud
    CPU's model name ('AMD EPYC') is the same on Zen 3, 4 and 5, whose AVX-512 differs (none,
    256-bit halves, full width)."""
    from alexnet_tf1.nn.cpu_kernels import cpuinfo
    f = cpuinfo()
    family = int(f['cpu family']) if f.get('cpu family', '').isdigit() else None
    model = int(f['model']) if f.get('model', '').isdigit() else None
    core = None
    if f.get('vendor_id') == 'AuthenticAMD' and family is not None:
        core = _AMD_CORES.get(family)
        if family == 25 and model is not None:
            zen4 = 0x10 <= model <= 0x1f or 0x60 <= model <= 0x7f or 0xa0 <= model <= 0xaf
            core = 'Zen 4' if zen4 else 'Zen 3'
    return {'vendor': f.get('vendor_id'), 'family': family, 'model': model, 'core': core}


@functools.lru_cache(maxsize=1)
def onednn():
    """{'version', 'isa', 'threads'} from oneDNN's own verbose lines, in a child process with
    this one's environment (so ONEDNN_MAX_CPU_ISA applies); None values when it says nothing
    (oneDNN off, or not an x86 build)."""
    env = {**os.environ, 'ONEDNN_VERBOSE': '1', 'TF_CPP_MIN_LOG_LEVEL': '3'}
    try:
        text = subprocess.run([sys.executable, '-c', _PROBE], env=env, capture_output=True,
                              text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        text = ''
    def find(pattern):
        m = re.search(pattern, text)
        return m.group(1).strip() if m else None
    threads = find(r'onednn_verbose,(?:v1,)?info,cpu,runtime:[^,]*,nthr:(\d+)')
    return {'version': find(r'oneDNN v([\d.]+)'),
            'isa': find(r'onednn_verbose,(?:v1,)?info,cpu,isa:([^\n]+)'),
            'threads': int(threads) if threads else None}


def isa_path():
    """The kernels oneDNN runs here: 'AVX-512', 'AVX2' (the CPU's own, or held there by
    ONEDNN_MAX_CPU_ISA) or 'below AVX2'."""
    from alexnet_tf1.nn.cpu_kernels import _cpu_flags, avx512, onednn_cap
    if avx512():
        return 'AVX-512'
    if 'avx2' in _cpu_flags() and onednn_cap().startswith(('ALL', 'AVX2', 'AVX512', 'AVX10')):
        return 'AVX2'
    return 'below AVX2'


def _cpu_times():
    with open('/proc/stat') as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return idle, sum(fields)


def others_busy(seconds=0.5):
    """The share of all CPUs busy while this process sleeps for `seconds`: other work on the
    machine. None where /proc/stat is not there."""
    try:
        idle0, total0 = _cpu_times()
        time.sleep(seconds)
        idle1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return round(1 - (idle1 - idle0) / total, 3) if total > 0 else None


def bf16_path():
    """The bf16 arithmetic oneDNN runs here: 'AMX', 'AVX512_BF16' or 'none'."""
    from alexnet_tf1.nn.cpu_kernels import bf16_path as path
    return {'amx': 'AMX', 'avx512_bf16': 'AVX512_BF16'}.get(path(), 'none')


def describe(busy_before, matmul_spread, intra_threads=0, inter_threads=0):
    """The 'machine' entry of the bench's JSON. matmul_spread: {'median', 'p25', 'p75', ...}
    in ms; busy_before: others_busy() measured before the run."""
    import tensorflow as tf
    spread = round((matmul_spread['p75'] - matmul_spread['p25']) / matmul_spread['median'], 3)
    d = onednn()
    return {
        'cpu_model': cpu_model(), 'cpu_id': cpu_id(), 'logical_cpus': os.cpu_count(),
        'isa_path': isa_path(), 'bf16_path': bf16_path(),
        'onednn_max_cpu_isa': os.environ.get('ONEDNN_MAX_CPU_ISA'),
        'onednn_version': d['version'], 'onednn_isa': d['isa'], 'onednn_threads': d['threads'],
        'tensorflow': tf.__version__,
        'tf_intra_op_threads': intra_threads or tf.config.threading.get_intra_op_parallelism_threads()
        or os.cpu_count(),
        'tf_inter_op_threads': inter_threads or tf.config.threading.get_inter_op_parallelism_threads()
        or os.cpu_count(),
        'others_busy_before': busy_before,
        'matmul_interquartile_spread': spread,
        # a quiet machine's matmul repeats within a few percent
        'other_load': bool((busy_before or 0) > 0.2 or spread > 0.1),
    }


def line(m):
    """One printed line for the bench's report."""
    busy = '-' if m['others_busy_before'] is None else f"{m['others_busy_before']:.0%}"
    c = m.get('cpu_id') or {}
    ident = (f" ({c['core'] or c['vendor']}, family {c['family']} model {c['model']})"
             if c.get('family') is not None else '')
    return (f"machine: {m['cpu_model']}{ident}, {m['logical_cpus']} logical CPUs, ISA path "
            f"{m['isa_path']}, bf16 path {m.get('bf16_path', '?')} "
            f"(oneDNN {m['onednn_version'] or '?'}: {m['onednn_isa'] or '?'}, "
            f"{m['onednn_threads'] or '?'} threads), TF {m['tensorflow']} threads intra "
            f"{m['tf_intra_op_threads']} / inter {m['tf_inter_op_threads']}; other work: "
            f"{busy} of the CPUs busy before, matmul spread {m['matmul_interquartile_spread']:.1%}"
            f" -> {'LOADED' if m['other_load'] else 'quiet'}")
