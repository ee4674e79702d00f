"""Layout detection and labels on tiny trees of each layout ILSVRC-2012 comes in."""
import gzip
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from alexnet_tf1.data import layouts
from alexnet_tf1.data.decode import load_image
from alexnet_tf1.data.prepare import prepare
from alexnet_tf1.data.reader import DataError, open_prepared


def _png(path, colour=(10, 20, 30), size=(12, 8)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new('RGB', size, colour).save(path, 'PNG')      # PNG bytes under a .JPEG name: fine


def _labels(listing, split):
    return [(ref, listing.classes.index(w)) for ref, w in listing.splits[split]]


def _devkit(root, id_to_wnid, truth):
    """meta.mat in meta.mat's own ID order, plus one internal (non-leaf) synset."""
    data = os.path.join(root, 'ILSVRC2012_devkit_t12', 'data')
    os.makedirs(data)
    rows = [(i, w, f'name of {w}', 0) for i, w in id_to_wnid.items()] + [(99, 'n09999999',
                                                                          'entity', 3)]
    syn = np.zeros((len(rows), 1), dtype=[('ILSVRC2012_ID', 'O'), ('WNID', 'O'),
                                          ('words', 'O'), ('num_children', 'O')])
    for k, r in enumerate(rows):
        syn[k, 0] = r
    scipy.io.savemat(os.path.join(data, 'meta.mat'), {'synsets': syn})
    with open(os.path.join(data, 'ILSVRC2012_validation_ground_truth.txt'), 'w') as f:
        f.write(''.join(f'{t}\n' for t in truth))


# meta.mat's IDs are NOT in sorted-wnid order: ID 1 is the last synset in sorted order
ID_TO_WNID = {1: 'n00000003', 2: 'n00000001', 3: 'n00000002'}
SORTED = ['n00000001', 'n00000002', 'n00000003']


def _official_val(root, truth=(1, 3, 2, 1)):
    for n in range(1, len(truth) + 1):
        _png(os.path.join(root, 'val', f'ILSVRC2012_val_{n:08d}.JPEG'))
    _devkit(root, ID_TO_WNID, truth)


def test_official_val_labels_go_through_meta_mat_to_sorted_index(tmp_path):
    root = str(tmp_path)
    for w in SORTED:
        for i in range(2):
            _png(os.path.join(root, 'train', w, f'{w}_{i}.JPEG'))
    _official_val(root)
    assert layouts.detect(root) == 'official'
    listing = layouts.list_layout(root)
    assert listing.classes == SORTED
    # file 1 -> ID 1 -> n00000003 -> label 2; file 2 -> ID 3 -> n00000002 -> 1; ...
    assert [y for _, y in _labels(listing, 'val')] == [2, 1, 0, 2]
    assert _labels(listing, 'train') == [(f'train/{w}/{w}_{i}.JPEG', k)
                                         for k, w in enumerate(SORTED) for i in range(2)]
    assert listing.names['n00000003'] == 'name of n00000003'
    assert 'n09999999' not in listing.classes


def test_official_reads_per_synset_tars_without_extracting(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'train'))
    colours = {'n00000001': (200, 0, 0), 'n00000002': (0, 200, 0), 'n00000003': (0, 0, 200)}
    for w, c in colours.items():
        with tarfile.open(os.path.join(root, 'train', f'{w}.tar'), 'w') as t:
            for i in range(3):
                buf = io.BytesIO()
                Image.new('RGB', (20 + i, 16), c).save(buf, 'PNG')
                info = tarfile.TarInfo(f'{w}_{i}.JPEG')
                info.size = len(buf.getvalue())
                t.addfile(info, io.BytesIO(buf.getvalue()))
    _official_val(root, truth=(2,))
    listing = layouts.list_layout(root)
    assert listing.layout == 'official'
    assert not [p for p in os.listdir(os.path.join(root, 'train')) if not p.endswith('.tar')]
    refs = [r for r, _ in listing.splits['train']]
    assert refs[:3] == [f'train/n00000001.tar/n00000001_{i}.JPEG' for i in range(3)]
    for ref, w in listing.splits['train']:
        path, offset, length = listing.locate(ref)
        with open(path, 'rb') as f:
            f.seek(offset)
            img = load_image(f.read(length), 8)
        assert tuple(img[4, 4]) == colours[w]
    assert _labels(listing, 'val') == [('val/ILSVRC2012_val_00000001.JPEG', 0)]

    m = prepare(root, str(tmp_path / 'out'), workers=1, size=8, progress=False)
    assert (m['layout'], m['dataset'], m['converted']) == ('official', 'imagenet', 10)
    train = open_prepared(str(tmp_path / 'out')).split('train')
    assert list(train.labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [tuple(img[4, 4]) for img in train.take(range(0, 9, 3))] == list(colours.values())


def test_official_val_without_devkit_is_a_clear_error(tmp_path):
    _png(str(tmp_path / 'train' / 'n00000001' / 'a.JPEG'))
    _png(str(tmp_path / 'val' / 'ILSVRC2012_val_00000001.JPEG'))
    with pytest.raises(DataError, match='devkit'):
        layouts.list_layout(str(tmp_path))


def test_kaggle_layout_reads_the_solution_csv_and_mapping(tmp_path):
    root = str(tmp_path)
    data = os.path.join(root, 'ILSVRC', 'Data', 'CLS-LOC')
    for w in ('n00000002', 'n00000001'):
        _png(os.path.join(data, 'train', w, f'{w}_1.JPEG'))
    for n in (1, 2, 3):
        _png(os.path.join(data, 'val', f'ILSVRC2012_val_{n:08d}.JPEG'))
    with open(os.path.join(root, 'LOC_synset_mapping.txt'), 'w') as f:
        f.write('n00000001 tench, Tinca tinca\nn00000002 goldfish\n')
    with open(os.path.join(root, 'LOC_val_solution.csv'), 'w') as f:
        f.write('ImageId,PredictionString\n'
                'ILSVRC2012_val_00000002,n00000001 1 2 3 4 n00000001 5 6 7 8\n'
                'ILSVRC2012_val_00000001,n00000002 1 2 3 4\n')
    assert layouts.detect(root) == 'kaggle'
    listing = layouts.list_layout(root)
    val = 'ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_0000000'
    assert _labels(listing, 'val') == [(val + '1.JPEG', 1), (val + '2.JPEG', 0)]
    assert listing.skipped == [{'path': val + '3.JPEG', 'reason': 'not in LOC_val_solution.csv'}]
    assert listing.names == {'n00000001': 'tench, Tinca tinca', 'n00000002': 'goldfish'}


def test_folders_layout_sorted_labels_names_and_unknown_val_class(tmp_path):
    root = str(tmp_path)
    for w in ('zebra', 'apple', 'mango'):
        _png(os.path.join(root, 'train', w, 'x.JPEG'))
        _png(os.path.join(root, 'val', w, 'y.JPEG'))
    _png(os.path.join(root, 'val', 'kiwi', 'z.JPEG'))
    with open(os.path.join(root, 'synset_words.txt'), 'w') as f:
        f.write('apple a red fruit\nzebra striped horse\n')
    listing = layouts.list_layout(root)
    assert (listing.layout, listing.dataset) == ('folders', 'folders')
    assert listing.classes == ['apple', 'mango', 'zebra']
    assert _labels(listing, 'val') == [('val/apple/y.JPEG', 0), ('val/mango/y.JPEG', 1),
                                       ('val/zebra/y.JPEG', 2)]
    assert listing.skipped == [{'path': 'val/kiwi/z.JPEG',
                                'reason': 'class kiwi has no training images'}]
    assert listing.names == {'apple': 'a red fruit', 'mango': '', 'zebra': 'striped horse'}


def test_layout_override_and_unknown_tree_are_one_line_errors(tmp_path):
    _png(str(tmp_path / 'train' / 'a' / 'x.JPEG'))
    with pytest.raises(DataError, match='not in the kaggle layout'):
        layouts.list_layout(str(tmp_path), 'kaggle')
    (tmp_path / 'other').mkdir()
    with pytest.raises(DataError, match='matches no known layout') as e:
        layouts.list_layout(str(tmp_path / 'other'))
    assert '\n' not in str(e.value)
    with pytest.raises(DataError, match='does not exist'):
        layouts.list_layout(str(tmp_path / 'missing'))


# --- CIFAR-10 ----------------------------------------------------------------------------

CIFAR_NAMES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse',
               'ship', 'truck']


def _cifar_image(batch, i):
    """A 32x32x3 image whose pixels tell which batch and index it came from."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, :, 0], img[:, :, 1], img[:, :, 2] = batch, i, np.arange(32)[None, :]
    return img


def _cifar_blobs(n=3):
    """The real format: protocol-2 pickles, bytes keys and names, rows in CHW order."""
    blobs = {'batches.meta': pickle.dumps({b'label_names': [s.encode() for s in CIFAR_NAMES],
                                           b'num_cases_per_batch': n}, protocol=2)}
    for b, name in enumerate([f'data_batch_{k}' for k in range(1, 6)] + ['test_batch']):
        imgs = np.stack([_cifar_image(b, i) for i in range(n)])
        blobs[name] = pickle.dumps({b'data': imgs.transpose(0, 3, 1, 2).reshape(n, -1),
                                    b'labels': [(b + i) % 10 for i in range(n)],
                                    b'batch_label': name.encode()}, protocol=2)
    return blobs


def _write_cifar_dir(root):
    d = os.path.join(root, 'cifar-10-batches-py')
    os.makedirs(d)
    for name, blob in _cifar_blobs().items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(blob)
    return d


def _check_cifar(listing):
    assert listing.layout == 'cifar10' and listing.classes == CIFAR_NAMES
    assert len(listing.splits['train']) == 15 and len(listing.splits['val']) == 3
    for split in ('train', 'val'):
        for ref, w in listing.splits[split]:
            batch_name, i = ref.split('/')[-2], int(ref.split('/')[-1])
            b = 5 if batch_name == 'test_batch' else int(batch_name[-1]) - 1
            assert listing.classes.index(w) == (b + i) % 10
            assert np.array_equal(listing.locate(ref), _cifar_image(b, i))


def test_cifar10_batches_dir_and_its_parent(tmp_path):
    d = _write_cifar_dir(str(tmp_path))
    for src in (d, str(tmp_path)):
        assert layouts.detect(src) == 'cifar10'
        _check_cifar(layouts.list_layout(src))


@pytest.mark.parametrize('name', ['cifar-10-python.tar.gz', 'cifar-10-batches-py.tar.gz'])
def test_cifar10_read_from_the_tar_gz_without_extracting(tmp_path, name):
    archive = str(tmp_path / name)
    with tarfile.open(archive, 'w:gz') as t:
        for member, blob in _cifar_blobs().items():
            info = tarfile.TarInfo(f'cifar-10-batches-py/{member}')
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
    for src in (archive, str(tmp_path)):
        _check_cifar(layouts.list_layout(src))
    assert os.listdir(str(tmp_path)) == [name]


def test_cifar10_unpickler_refuses_anything_but_arrays(tmp_path):
    d = _write_cifar_dir(str(tmp_path))

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo owned > ' + str(tmp_path / 'owned'),))
    with open(os.path.join(d, 'data_batch_3'), 'wb') as f:
        pickle.dump({b'data': Evil(), b'labels': []}, f, protocol=2)
    with pytest.raises(DataError, match='system; refused'):
        layouts.list_layout(d)
    assert not (tmp_path / 'owned').exists()


# --- MNIST -------------------------------------------------------------------------------

def _idx(array):
    head = bytes([0, 0, 8, array.ndim]) + b''.join(int(n).to_bytes(4, 'big')
                                                    for n in array.shape)
    return head + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize('gz', [False, True])
def test_mnist_idx_files_padded_to_32(tmp_path, gz):
    rng = np.random.default_rng(0)
    sets = {'train': (rng.integers(1, 256, (5, 28, 28)), np.array([3, 1, 4, 1, 5])),
            't10k': (rng.integers(1, 256, (2, 28, 28)), np.array([9, 2]))}
    for part, (images, labels) in sets.items():
        for kind, arr, n in (('images', images, 3), ('labels', labels, 1)):
            name = str(tmp_path / f'{part}-{kind}-idx{n}-ubyte')
            opener = gzip.open if gz else open
            with opener(name + ('.gz' if gz else ''), 'wb') as f:
                f.write(_idx(arr))
    assert layouts.detect(str(tmp_path)) == 'mnist'
    listing = layouts.list_layout(str(tmp_path))
    assert (listing.image_size, listing.channels) == (32, 1)
    assert listing.classes == [str(d) for d in range(10)]
    for split, part in (('train', 'train'), ('val', 't10k')):
        images, labels = sets[part]
        assert [int(w) for _, w in listing.splits[split]] == list(labels)
        for i, (ref, _) in enumerate(listing.splits[split]):
            img = listing.locate(ref)
            assert img.shape == (32, 32, 1)
            assert np.array_equal(img[2:30, 2:30, 0], images[i])
            assert img[:2].sum() == img[30:].sum() == img[:, :2].sum() == img[:, 30:].sum() == 0
