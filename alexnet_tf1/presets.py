"""Recipes as data, one per model family and data set. Flags on the command line override them.

alexnet: Krizhevsky et al. 2012 - batch 128, SGD momentum 0.9, weight decay 5e-4, lr 0.01
divided by 10 when validation error stops improving (three times), about 90 epochs, biases 1.
alexnet-sample: the built-in sample set's short schedule, sized to finish in minutes on 2 CPU
cores. The paper's initialisation starts flat (Caffe's reproduction moved the biases to 0.1
for that reason), so this preset uses Caffe's 0.1 and a step schedule; the model is unchanged.
Its batch is 32, so its lr is the paper's 0.01 x sqrt(32 / 128): at 0.01 some runs diverged
half-way (74% error where others reached 13%), at 0.005 seeds 0-2 all ended at 10-14%.
vgg: Simonyan and Zisserman 2015 - batch 256, momentum 0.9, weight decay 5e-4, lr 0.01 /10
three times, 74 epochs, 224 crops of 256 images (S = 256).
googlenet: Szegedy et al. 2015 use asynchronous SGD, momentum 0.9 and a 4% lr drop every 8
epochs; on one machine: momentum 0.9, lr 0.01 /10 on plateau, batch 128, 224 crops.
lenet5: MNIST at 32x32, no crops, no lighting, 20 epochs, no weight decay.
"""

_COMMON = dict(momentum=0.9, weight_decay=5e-4, lr_schedule='plateau', patience=2,
               step_epochs=30, lighting=0.1, save_every=1000, print_freq=20, init_bias=None)

PRESETS = {
    'alexnet': dict(_COMMON, batch_size=128, lr=0.01, epochs=90, init_bias=1.0),
    'alexnet-sample': dict(_COMMON, batch_size=32, lr=0.005, epochs=12, lr_schedule='step',
                           step_epochs=9, init_bias=0.1, save_every=100, print_freq=5),
    'vgg': dict(_COMMON, batch_size=256, lr=0.01, epochs=74),
    'googlenet': dict(_COMMON, batch_size=128, lr=0.01, epochs=90),
    'lenet5': dict(_COMMON, batch_size=32, lr=0.01, epochs=20, weight_decay=0.0, lighting=0.0,
                   save_every=500),
}


def choose(model, dataset):
    """The preset name for `model` trained on a data set called `dataset`."""
    family = 'vgg' if model.startswith('vgg') else 'lenet5' if model.startswith('lenet5') \
        else model
    if family == 'alexnet' and dataset == 'sample':
        return 'alexnet-sample'
    return family


def describe():
    return '\n'.join(f"{name}: " + ', '.join(f'{k}={v}' for k, v in p.items() if v is not None)
                     for name, p in PRESETS.items())
