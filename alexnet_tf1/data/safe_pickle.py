"""Read pickles and .npy files without running code from them.

Unpickling calls whatever callables the file names, so a pickle from the internet can run
os.system. SafeUnpickler resolves only the few names NumPy arrays are rebuilt from (and
_codecs.encode, which protocol-2 pickles use for bytes); dict, list, tuple, str, bytes,
numbers and None need no name at all. Any other name is refused before anything is called:

    with open('data_batch_1', 'rb') as f:            # CIFAR-10, a Python 2 pickle
        batch = safe_pickle.safe_load(f, encoding='bytes')
    weights = safe_pickle.load_npy('bvlc_alexnet.npy').item()    # a pickled dict in a .npy
"""
import codecs
import io
import pickle

import numpy as np

try:                                    # NumPy 2 moved numpy.core to numpy._core
    from numpy._core import multiarray as _multiarray, numeric as _numeric
except ImportError:                     # pragma: no cover - NumPy 1
    from numpy.core import multiarray as _multiarray, numeric as _numeric

_FORMAT = np.lib.format


class RefusedPickle(pickle.UnpicklingError):
    """The file named a callable outside the allowed set; the message is one line."""


def _allowed():
    names = {
        ('numpy', 'ndarray'): np.ndarray,
        ('numpy', 'dtype'): np.dtype,
        ('_codecs', 'encode'): codecs.encode,
    }
    for core in ('numpy.core', 'numpy._core'):      # pickles name either, whatever NumPy reads them
        names[(f'{core}.multiarray', '_reconstruct')] = _multiarray._reconstruct
        names[(f'{core}.multiarray', 'scalar')] = _multiarray.scalar
        names[(f'{core}.numeric', '_frombuffer')] = _numeric._frombuffer
    return names


ALLOWED = _allowed()


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, source='the file', **kwargs):
        super().__init__(file, **kwargs)
        self.source = source

    def find_class(self, module, name):
        try:
            return ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickle(
                f'{self.source} tried to load {module}.{name}; refused: unpickling runs code, '
                f'and only NumPy arrays and plain containers are allowed') from None

    def persistent_load(self, pid):
        raise RefusedPickle(f'{self.source} uses persistent ids; refused')


def safe_load(fileobj, encoding='ASCII', source=None):
    """pickle.load restricted to NumPy arrays, numbers, strings, bytes and containers.

    encoding: as pickle's, for Python 2 str: 'latin1' for NumPy arrays (np.load's choice),
    'bytes' to keep them as bytes (CIFAR-10 batches).
    """
    source = source or getattr(fileobj, 'name', None) or 'the pickle'
    return SafeUnpickler(fileobj, source=source, encoding=encoding).load()


def safe_loads(data, encoding='ASCII', source='the pickle'):
    return safe_load(io.BytesIO(data), encoding, source)


def load_npy(path_or_file, encoding='latin1'):
    """A .npy file as np.load(allow_pickle=True) would read it, but through SafeUnpickler.

    The header is parsed here; plain arrays are read as raw data, object arrays (a pickled
    dict saved with np.save, as bvlc_alexnet.npy) are unpickled with the restrictions above.
    """
    if isinstance(path_or_file, (str, bytes)) or hasattr(path_or_file, '__fspath__'):
        with open(path_or_file, 'rb') as f:
            return _read_npy(f, str(path_or_file), encoding)
    return _read_npy(path_or_file, getattr(path_or_file, 'name', 'the .npy file'), encoding)


def _read_npy(f, source, encoding):
    try:
        version = _FORMAT.read_magic(f)
    except ValueError as e:
        raise ValueError(f'{source} is not a .npy file ({e})') from None
    if version == (1, 0):
        shape, fortran, dtype = _FORMAT.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = _FORMAT.read_array_header_2_0(f)
    else:   # 3.0: a utf-8 header, otherwise as 2.0
        shape, fortran, dtype = _FORMAT._read_array_header(f, version)
    if dtype.hasobject:
        return safe_load(f, encoding=encoding, source=source)
    count = int(np.prod(shape, dtype=np.int64))
    data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f'{source} is truncated: {len(data)} of {count * dtype.itemsize} bytes')
    return np.frombuffer(data, dtype).reshape(shape, order='F' if fortran else 'C').copy()
