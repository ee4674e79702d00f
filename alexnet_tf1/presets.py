"""Recipes as data. Flags given on the command line override the preset's values.

paper: Krizhevsky et al. 2012 - batch 128, SGD momentum 0.9, weight decay 5e-4, lr 0.01
divided by 10 when validation error stops improving (three times), about 90 epochs, biases 1.
sample: the built-in sample set's short schedule, sized to finish in minutes on 2 CPU cores.
The paper's initialisation starts flat (Caffe's reproduction moved the biases to 0.1 for that
reason), so this preset uses Caffe's 0.1 and a step schedule; the model is unchanged.
"""

PRESETS = {
    'paper': dict(batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4, epochs=90,
                  lr_schedule='plateau', patience=2, step_epochs=30, init_bias=1.0,
                  lighting=0.1, save_every=1000, print_freq=20),
    'sample': dict(batch_size=32, lr=0.01, momentum=0.9, weight_decay=5e-4, epochs=12,
                   lr_schedule='step', patience=2, step_epochs=9, init_bias=0.1,
                   lighting=0.1, save_every=100, print_freq=5),
}


def for_dataset(dataset):
    return 'sample' if dataset == 'sample' else 'paper'


def describe():
    lines = []
    for name, p in PRESETS.items():
        lines.append(f"{name}: " + ', '.join(f'{k}={v}' for k, v in p.items()))
    return '\n'.join(lines)
