"""Inception-v4, Inception-ResNet-v1 and -v2 (Szegedy, Ioffe, Vanhoucke, Alemi, "Inception-v4,
Inception-ResNet and the Impact of Residual Connections on Learning", AAAI 2017), as tables of
models/inception.py's blocks. Figure numbers are the paper's; 'V' marks its "V" (valid).

inception-v4: the stem of Figure 3, 4 x Inception-A (Figure 4), Reduction-A (Figure 7 with
k, l, m, n = 192, 224, 256, 384), 7 x Inception-B (Figure 5), Reduction-B (Figure 8),
3 x Inception-C (Figure 6), average pool, dropout (keep 0.8), softmax (Figure 9).

inception-resnet-v1: the stem of Figure 14, 5 x Figure 10, Reduction-A with k, l, m, n = 192,
192, 256, 384, 10 x Figure 11, Reduction-B of Figure 12, 5 x Figure 13 (Figure 15's counts).
The residuals are scaled by 0.17, 0.10 and 0.20 (section 3.3 gives 0.1-0.3; these are the
published -v2's).

inception-resnet-v2: the network Google published weights for (TF-slim's
inception_resnet_v2, keras.applications.InceptionResNetV2): 10 x block35, 20 x block17,
10 x block8 (the last one linear, scale 1), 55,873,736 parameters with the top (55,813,192
trainable). It differs from the paper's Figures 16-19 where the paper's figures disagree with
their own sums (1154 maps for 1152) and in its stem (Mixed_5b, 320 maps). The named option
inception-resnet-v2-figure15 has Figure 15's block counts, 5, 10 and 5.
"""
from functools import partial

from alexnet_tf1.models import inception
from alexnet_tf1.models.inception import block, repeat
from alexnet_tf1.models.spec import ModelSpec

CONV_STEM = (
    block('Conv2d_1a_3x3', '3x3/2V-32'),          # 149x149x32
    block('Conv2d_2a_3x3', '3x3V-32'),            # 147x147x32
    block('Conv2d_2b_3x3', '3x3-64'),             # 147x147x64
)


def _reduction_a(k, l, m, n):                     # Figure 7
    return block('Mixed_6a', f'3x3/2V-{n}', f'1x1-{k} 3x3-{l} 3x3/2V-{m}', 'max3/2V')


V4 = CONV_STEM + (
    block('Mixed_3a', 'max3/2V', '3x3/2V-96'),                               # 73x73x160
    block('Mixed_4a', '1x1-64 3x3V-96', '1x1-64 7x1-64 1x7-64 3x3V-96'),     # 71x71x192
    block('Mixed_5a', '3x3/2V-192', 'max3/2V'),                              # 35x35x384
    *repeat(4, 'Inception_A', '1x1-96', '1x1-64 3x3-96', '1x1-64 3x3-96 3x3-96',
            'avg3 1x1-96'),                                                  # 384
    _reduction_a(192, 224, 256, 384),                                        # 17x17x1024
    *repeat(7, 'Inception_B', '1x1-384', '1x1-192 1x7-224 7x1-256',
            '1x1-192 1x7-192 7x1-224 1x7-224 7x1-256', 'avg3 1x1-128'),      # 1024
    block('Mixed_7a', '1x1-192 3x3/2V-192', '1x1-256 1x7-256 7x1-320 3x3/2V-320',
          'max3/2V'),                                                        # 8x8x1536
    *repeat(3, 'Inception_C', '1x1-256', '1x1-384 [1x3-256 3x1-256]',
            '1x1-384 1x3-448 3x1-512 [1x3-256 3x1-256]', 'avg3 1x1-256'),    # 1536
)

RESNET_V1 = CONV_STEM + (
    block('MaxPool_3a_3x3', 'max3/2V'),           # 73x73x64
    block('Conv2d_3b_1x1', '1x1-80'),             # 73x73x80
    block('Conv2d_4a_3x3', '3x3V-192'),           # 71x71x192
    block('Conv2d_4b_3x3', '3x3/2V-256'),         # 35x35x256
    *repeat(5, 'Block35', '1x1-32', '1x1-32 3x3-32', '1x1-32 3x3-32 3x3-32', scale=0.17),
    _reduction_a(192, 192, 256, 384),                                        # 17x17x896
    *repeat(10, 'Block17', '1x1-128', '1x1-128 1x7-128 7x1-128', scale=0.10),
    block('Mixed_7a', '1x1-256 3x3/2V-384', '1x1-256 3x3/2V-256',
          '1x1-256 3x3-256 3x3/2V-256', 'max3/2V'),                          # 8x8x1792
    *repeat(5, 'Block8', '1x1-192', '1x1-192 1x3-192 3x1-192', scale=0.20),
)


def resnet_v2(a=10, b=20, c=10):
    """The published Inception-ResNet-v2 with a, b, c blocks of each kind."""
    return CONV_STEM + (
        block('MaxPool_3a_3x3', 'max3/2V'),       # 73x73x64
        block('Conv2d_3b_1x1', '1x1V-80'),        # 73x73x80
        block('Conv2d_4a_3x3', '3x3V-192'),       # 71x71x192
        block('MaxPool_5a_3x3', 'max3/2V'),       # 35x35x192
        block('Mixed_5b', '1x1-96', '1x1-48 5x5-64', '1x1-64 3x3-96 3x3-96', 'avg3 1x1-64'),
        *repeat(a, 'Block35', '1x1-32', '1x1-32 3x3-32', '1x1-32 3x3-48 3x3-64', scale=0.17),
        block('Mixed_6a', '3x3/2V-384', '1x1-256 3x3-256 3x3/2V-384', 'max3/2V'),  # 1088
        *repeat(b, 'Block17', '1x1-192', '1x1-128 1x7-160 7x1-192', scale=0.10),
        block('Mixed_7a', '1x1-256 3x3/2V-384', '1x1-256 3x3/2V-288',
              '1x1-256 3x3-288 3x3/2V-320', 'max3/2V'),                      # 8x8x2080
        *repeat(c - 1, 'Block8', '1x1-192', '1x1-192 1x3-224 3x1-256', scale=0.20),
        block(f'Block8_{c}', '1x1-192', '1x1-192 1x3-224 3x1-256', scale=1.0, relu=False),
        block('Conv2d_7b_1x1', '1x1-1536'),       # 8x8x1536
    )


TABLES = {'inception-v4': V4, 'inception-resnet-v1': RESNET_V1,
          'inception-resnet-v2': resnet_v2(), 'inception-resnet-v2-figure15': resnet_v2(5, 10, 5)}
# parameters with the 1000-way top, batch norm's moving statistics included (Keras' count);
# the published -v2's (keras.applications.InceptionResNetV2), the others derived from the figures in
# tests/test_inception.py
PAPER_TOTAL = {'inception-v4': 42_711_400, 'inception-resnet-v1': 22_769_848,
               'inception-resnet-v2': 55_873_736, 'inception-resnet-v2-figure15': 33_800_696}
_ROW = 'paper (Table 2), 1 model, 1 crop'
PUBLISHED = {'inception-v4': ((_ROW, 'ILSVRC-2012 val', 20.0, 5.0),),
             'inception-resnet-v1': ((_ROW, 'ILSVRC-2012 val', 21.3, 5.5),),
             'inception-resnet-v2': ((_ROW, 'ILSVRC-2012 val', 19.9, 4.9),),
             'inception-resnet-v2-figure15': ()}
SPECS = tuple(ModelSpec(name, 1, table, partial(inception.build, table=table), PAPER_TOTAL[name],
                        published=PUBLISHED[name])
              for name, table in TABLES.items())
