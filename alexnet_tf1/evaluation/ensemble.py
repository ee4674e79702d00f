"""Ensembles, as the paper's 5- and 7-CNN rows: several checkpoints score the same validation
split and their softmax probabilities are averaged, each member's centre crop and its own
10-crop average taken at its own input size (so members may be different models)."""
import os

from alexnet_tf1.training import checkpoints as ckpt_mod

from alexnet_tf1.evaluation import evaluate
from alexnet_tf1.data.reader import DataError, open_prepared


def resolve_members(specs, train_dir, expect_model=None):
    """[(checkpoint prefix, run state)], each --checkpoint value resolved as a single one is."""
    out = []
    for spec in specs:
        path = ckpt_mod.resolve(spec, train_dir)
        state = ckpt_mod.read_state(path)
        if expect_model and state['model'] != expect_model:
            raise ckpt_mod.CheckpointError(
                f"{path} is a {state['model']} checkpoint, not {expect_model}")
        out.append((path, state))
    return out


def check_data(members, prepared):
    """Averaging is only meaningful when label i means the same class to every member: same
    class count and, where a member's own data set is still there, the same class list."""
    for path, state in members:
        k = state['config'].get('num_classes')
        if k != prepared.num_classes:
            raise DataError(f'{path} has {k} classes, the ensemble\'s data {prepared.path} '
                            f'{prepared.num_classes}: every member must have the same classes')
        own = state.get('data_dir')
        if not own or os.path.abspath(own) == os.path.abspath(prepared.path):
            continue
        try:
            theirs = open_prepared(own).synsets
        except DataError:
            continue        # its training data has moved on: nothing left to compare with
        if theirs != prepared.synsets:
            raise DataError(f'{path} was trained on {own}, whose classes (names or order) '
                            f'differ from those of {prepared.path}')


def score(members, data_dir=None, gpus='auto', batch_size=32, log=print):
    """(eval-ensemble.json's dict, (centre-crop probs, k-crop probs, labels) of the ensemble).

    The data is `data_dir`, else the first member's. Members are restored one at a time and
    closed after, so an ensemble needs the memory of its largest member only."""
    data_dir = data_dir or members[0][1].get('data_dir')
    if not data_dir:
        raise DataError(f'{members[0][0]} does not say which data it was trained on: '
                        f'give --data-dir')
    prepared = open_prepared(data_dir)
    check_data(members, prepared)
    p1 = pk = labels = None
    rows = []
    for path, _ in members:
        restored = evaluate.Restored(path, gpus)
        log(evaluate.describe_checkpoint(path, restored.state))
        try:
            q1, qk, labels, crops = evaluate.crop_probs(restored, restored.data(prepared),
                                                        batch_size)
        finally:
            restored.close()
        rows.append({'checkpoint': os.path.abspath(path), 'model': restored.config.model,
                     'global_step': int(restored.state['global_step']),
                     'input_size': restored.config.input_size,
                     **evaluate.scores(q1, qk, labels, crops)})
        p1, pk = (q1, qk) if p1 is None else (p1 + q1, pk + qk)
    n = len(members)
    ks = {m['crops'] for m in rows}
    k = ks.pop() if len(ks) == 1 else 'own'     # a digit model (5 crops) beside a 10-crop one
    p1, pk = p1 / n, pk / n
    result = {'members': rows, 'dataset': prepared.dataset,
              'data_dir': os.path.abspath(prepared.path),
              **evaluate.scores(p1, pk, labels, k)}
    return result, (p1, pk, labels)


def default_path(result):
    return os.path.join(os.path.dirname(result['members'][0]['checkpoint']),
                        'eval-ensemble.json')


def report(result, published):
    n, k = len(result['members']), result['crops']
    crops = f'{k} crops' if k != 'own' else "each member's own crops"
    lines = [f"ensemble of {n}, {result['dataset']} val: {result['n_images']} images",
             evaluate.HEADER]
    for i, m in enumerate(result['members'], 1):
        where = os.path.basename(os.path.dirname(m['checkpoint']))
        lines.append(evaluate.row(f"member {i}: {m['model']} {where}, {m['crops']} crops",
                                  m[f"top1_error_{m['crops']}crop"],
                                  m[f"top5_error_{m['crops']}crop"]))
    lines.append(evaluate.row(f'ours, {n} CNNs, centre crop', result['top1_error_1crop'],
                              result['top5_error_1crop']))
    lines.append(evaluate.row(f'ours, {n} CNNs, {crops}', result[f'top1_error_{k}crop'],
                              result[f'top5_error_{k}crop']))
    return '\n'.join(lines + evaluate.published_rows(published, result['dataset']))
