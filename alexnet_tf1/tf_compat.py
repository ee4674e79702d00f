"""The one place TensorFlow is imported: tf, tf1 (= tf.compat.v1), and a quiet session.

TF's C++ side prints CUDA-probe lines on machines without a GPU when it loads and when the
first session starts, before any log level applies; they are held back here and shown only
if that step fails. Set TF_CPP_MIN_LOG_LEVEL yourself to see TF's own logging.
"""
import contextlib
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# TF turns its oneDNN CPU kernels on by default only for some CPUs; without them its matmul
# reached 90 of the 181 GFLOP/s it reaches with them on a 2-core AMD EPYC (same run).
os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
# TF's default CPU allocator hands tensors over 32 MB (AlexNet's conv1 maps, fc6's gradient)
# to glibc's mmap, so steps kept paying page faults for fresh pages (up to 0.7 s of system
# time in a 3 s step); its BFC allocator keeps the memory and reuses it
os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'true')


@contextlib.contextmanager
def quiet_stderr():
    """Send fd 2 to a temp file for the block; replay it if the block raises."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors='replace'))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


with quiet_stderr():
    import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
tf1.logging.set_verbosity(tf1.logging.ERROR)


def session(graph, config):
    with quiet_stderr():
        return tf1.Session(graph=graph, config=config)


def list_gpus():
    with quiet_stderr():
        return tf.config.list_physical_devices('GPU')
