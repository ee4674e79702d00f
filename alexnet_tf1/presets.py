"""Recipes as data, one per model family and data set. Flags on the command line override them.

alexnet (and caffenet): Krizhevsky et al. 2012 - batch 128, SGD momentum 0.9, weight decay 5e-4, lr 0.01
divided by 10 when validation error stops improving (three times), about 90 epochs, biases 1.
alexnet-sample: the built-in sample set's short schedule, sized to finish in minutes on 2 CPU
cores. The paper's initialisation starts flat (Caffe's reproduction moved the biases to 0.1
for that reason), so this preset uses Caffe's 0.1; the model is unchanged. Its batch is 32, so
its peak lr is the paper's 0.01 x sqrt(32 / 128). A constant rate with one drop sat at the
edge of stability (which runs diverged late depended on the CPU's rounding), so the rate
rises from 0 over 2 epochs (Goyal et al. 2017) and falls along a cosine to 0 at epoch 14: it
is highest where the loss is high and the net far from any sharp minimum, and already low
where the constant rate blew up (epochs 8-10). docs/results.md "The sample preset" has the matrix.
vgg: Simonyan and Zisserman 2015 - batch 256, momentum 0.9, weight decay 5e-4, lr 0.01 /10
three times, 74 epochs, 224 crops of 256 images (S = 256).
googlenet: Szegedy et al. 2015 use asynchronous SGD, momentum 0.9 and a 4% lr drop every 8
epochs; on one machine: momentum 0.9, lr 0.01 /10 on plateau, batch 128, 224 crops.
vgg-sample, googlenet-sample: the sample set in under 30 minutes on 2 cores; batch 32 with the
lr scaled by sqrt(batch / paper's batch) as for AlexNet, the same warm-up and cosine. VGG
starts from Glorot-uniform weights, which keep the signal's scale through 11 layers (the
paper's own way to start the deep nets, B-E from a trained A, is --init-from).
inception (v2, v3): Szegedy et al. 2016 - RMSProp (decay 0.9, epsilon 1.0, TF's momentum 0.9),
lr 0.045 times 0.94 every 2 epochs, gradient clipping at 2.0, label smoothing 0.1, batch 32
(per replica; the paper's 50 replicas updated asynchronously, each with its own batch of 32),
weight decay 4e-5 (TF-slim's; the paper gives none), 100 epochs, 299 crops.
inception-v4 (v4, Inception-ResNet v1 and v2): Szegedy et al. 2017 - the same RMSProp and lr
schedule; the paper names neither label smoothing nor clipping, so neither is on.
inception-sample, inception-v4-sample: the sample set in under 30 minutes on 2 cores: 160 px
crops of images stored at 183 (the nets are convolutional up to their global average pool; at
299 one epoch of Inception-ResNet-v2 took 6 minutes here), the papers' RMSProp with a warm-up
of 2 epochs and a cosine to 0 as for the other sample presets, batch norm decay 0.9, neither
clipping nor label smoothing (docs/results.md "The later Inception family" says why); v2 / v3 at lr
0.01 for 40 epochs (in 20 the seed decided whether v3 got past 60%), v4 and the
Inception-ResNets at 0.004 for 16.
cifar4: the AlexNet paper's Figure 1 - "no regularization of any kind": no weight decay, no
dropout, no mirrors or lighting, the whole 32x32 image; batch 128, momentum 0.9, a constant
rate (the paper chose each net's rate to train fastest: experiments relu-vs-tanh does).
lenet5, lenet5-relu: digits at 32x32, never mirrored (a mirrored digit is not the digit),
moved by up to 2 pixels instead of cropped (the input is the whole image), no lighting, a
cosine schedule, weight decay. LeCun et al.'s own optimiser (stochastic diagonal
Levenberg-Marquardt) is not reproduced: SGD with momentum, each at the rate it learns at.
"""

_COMMON = dict(momentum=0.9, weight_decay=5e-4, lr_schedule='plateau', patience=2,
               step_epochs=30, warmup_epochs=0, lighting=0.1, flip=True, shift=0, crop=True,
               init=None,
               save_every=1000, print_freq=20, init_bias=None, seed=0, optimizer='momentum',
               label_smoothing=0.0, clip_norm=None, lr_factor=0.1, input_size=None,
               bn_decay=None)
_INCEPTION = dict(_COMMON, batch_size=32, lr=0.045, epochs=100, optimizer='rmsprop',
                  lr_schedule='exponential', lr_factor=0.94, step_epochs=2, weight_decay=4e-5,
                  label_smoothing=0.1, clip_norm=2.0)
_INCEPTION_SAMPLE = dict(_INCEPTION, lr=0.01, epochs=40, lr_schedule='cosine', warmup_epochs=2,
                         clip_norm=None, label_smoothing=0.0, bn_decay=0.9, input_size=160,
                         save_every=100, print_freq=5)

PRESETS = {
    'alexnet': dict(_COMMON, batch_size=128, lr=0.01, epochs=90, init_bias=1.0),
    'alexnet-sample': dict(_COMMON, batch_size=32, lr=0.005, epochs=14, lr_schedule='cosine',
                           warmup_epochs=2, init_bias=0.1, save_every=100, print_freq=5),
    'vgg': dict(_COMMON, batch_size=256, lr=0.01, epochs=74),
    'vgg-sample': dict(_COMMON, batch_size=32, lr=0.0035, epochs=18, lr_schedule='cosine',
                       warmup_epochs=2, init='glorot', save_every=100, print_freq=5),
    'googlenet': dict(_COMMON, batch_size=128, lr=0.01, epochs=90),
    'googlenet-sample': dict(_COMMON, batch_size=32, lr=0.005, epochs=25, lr_schedule='cosine',
                             warmup_epochs=2, save_every=100, print_freq=5),
    'inception': _INCEPTION,
    'inception-v4': dict(_INCEPTION, label_smoothing=0.0, clip_norm=None),
    'inception-sample': _INCEPTION_SAMPLE,
    'inception-v4-sample': dict(_INCEPTION_SAMPLE, lr=0.004, epochs=16),
    'cifar4': dict(_COMMON, batch_size=128, lr=0.01, epochs=30, lr_schedule='step',
                   step_epochs=10_000, weight_decay=0.0, lighting=0.0, flip=False,
                   save_every=500),
    'lenet5': dict(_COMMON, batch_size=32, lr=0.002, epochs=150, weight_decay=5e-4,
                   lr_schedule='cosine', lighting=0.0, flip=False, shift=2, save_every=500),
    'lenet5-relu': dict(_COMMON, batch_size=32, lr=0.05, epochs=60, weight_decay=5e-4,
                        lr_schedule='cosine', lighting=0.0, flip=False, shift=2, save_every=500),
}


def choose(model, dataset):
    """The preset name for `model` trained on a data set called `dataset`."""
    family = 'vgg' if model.startswith('vgg') else {
        'caffenet': 'alexnet', 'alexnet-one-tower': 'alexnet'}.get(model, model)
    if model.startswith('inception'):
        family = 'inception' if model in ('inception-v2', 'inception-v3') else 'inception-v4'
    if dataset == 'sample' and family + '-sample' in PRESETS:
        return family + '-sample'
    return family


def describe():
    return '\n'.join(f"{name}: " + ', '.join(f'{k}={v}' for k, v in p.items() if v is not None)
                     for name, p in PRESETS.items())
