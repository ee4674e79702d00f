"""A loss spike, made for real: it is flagged on the progress line, kept in the run's state in
every checkpoint from then on (across a resume too) and reported in eval.json."""
import json
import os
import re

import numpy as np

import run_eval
import run_train
from alexnet_tf1.training import checkpoints
from synthetic_prepared import write_prepared


def spikes_by_the_readme(losses, window=50, fill=25):
    """Steps (1-based) whose loss is more than twice the 90th percentile of the last `window`
    steps' and more than 1 nat above it; the first `fill` steps only fill the window."""
    out = []
    for i, loss in enumerate(losses):
        recent = losses[max(0, i - window):i]
        if len(recent) >= fill:
            level = np.percentile(recent, 90)
            if loss > 2 * level and loss - level > 1:
                out.append(i + 1)
    return out


def odd_label_set(path):
    """29 copies of one grey picture labelled 0 and one labelled 1: at a picture a step the net
    learns to say 0, so the step that draws the 1 jumps from a fraction of a nat to several."""
    images = np.full((30, 32, 32, 3), 128, np.uint8)
    labels = np.zeros(30, np.int32)
    labels[7] = 1
    return write_prepared(path, {'train': (images, labels), 'val': (images[:4], labels[4:8])},
                          num_classes=2, dataset='tiny')


def test_a_loss_spike_is_in_every_later_checkpoint_and_in_eval_json(tmp_path, capsys):
    data = odd_label_set(str(tmp_path / 'data'))
    td = str(tmp_path / 'run')
    args = ['--model', 'cifar4', '--data-dir', data, '--train-dir', td, '--gpus', 'cpu',
            '--batch-size', '1', '--lr', '0.001', '--print-freq', '1', '--save-every', '5',
            '--keep', '100']
    assert run_train.main(args + ['--epochs', '2']) == 0
    out = capsys.readouterr().out
    steps = re.findall(r'^epoch \d/2 step \d+/30  loss (\S+) .*?err@1 (\S+)%(.*)$', out, re.M)
    assert len(steps) == 60
    losses = [float(loss) for loss, _, _ in steps]
    flagged = [i + 1 for i, (_, _, note) in enumerate(steps) if 'LOSS SPIKE' in note]
    # the one labelled 1 is drawn once an epoch; epoch 1's comes before the window is full
    assert flagged == spikes_by_the_readme(losses) and len(flagged) == 1 and flagged[0] > 30
    step = flagged[0]
    assert steps[step - 1][1] == '100.0'            # the step whose one picture was the 1
    final = checkpoints.read_state(checkpoints.latest(td))
    assert len(final.get('spikes', [])) == 1
    spike = final['spikes'][0]
    assert (spike['step'], spike['epoch']) == (step, 2)
    assert spike['cross_entropy'] == losses[step - 1]   # cifar4's recipe: no weight decay

    saved = sorted(int(p.rsplit('-', 1)[1][:-len('.index')])
                   for p in os.listdir(td) if p.endswith('.index'))
    assert saved == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60]
    for k in saved:
        s = checkpoints.read_state(os.path.join(td, f'model.ckpt-{k}'))
        assert s.get('spikes', []) == ([spike] if k >= step else []), k

    # a run stopped at epoch 1's end and resumed flags the same step: the loss watch's window
    # goes on with the run (here the spike comes before a fresh window would be half full)
    assert step - 30 < 25
    stopped = str(tmp_path / 'stopped')
    again = [a if a != td else stopped for a in args]
    assert run_train.main(again + ['--epochs', '1']) == 0
    assert run_train.main(again + ['--epochs', '2']) == 0
    assert checkpoints.read_state(checkpoints.latest(stopped))['spikes'] == [spike]

    # a resumed run starts with what was recorded
    assert run_train.main(args + ['--epochs', '3']) == 0
    capsys.readouterr()
    final = checkpoints.read_state(checkpoints.latest(td))
    assert final['global_step'] == 90 and final['spikes'][0] == spike

    assert run_eval.main(['--train-dir', td, '--gpus', 'cpu']) == 0
    assert f'first at step {step} (epoch 2)' in capsys.readouterr().out
    with open(os.path.join(td, 'eval.json')) as f:
        result = json.load(f)
    assert result['global_step'] == 90 and result['run']['loss_spikes'] == final['spikes']
