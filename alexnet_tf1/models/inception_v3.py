"""Inception v2 and v3 (Szegedy, Vanhoucke, Ioffe, Shlens, Wojna, "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016), as tables of models/inception.py's blocks.

inception-v3 is the network Google published weights for (TF-slim's inception_v3, built by
keras.applications.InceptionV3): 23,851,784 parameters with the 1000-way top, 23,817,352 of
them trainable, 94 batch-normalised convolutions. The block names are TF-slim's.

inception-v2 is the paper's Table 1. Its stem is the table's rows (conv 3x3/2, 3x3, 3x3
padded, pool 3x3/2, conv 3x3 80, conv 3x3/2 192, conv 3x3 288); its 35x35 modules are
Figure 5's (the 5x5 as two 3x3), five Figure 6 modules (n = 7) at 17x17, two Figure 7
modules at 8x8, grid reductions as in Figure 10 (conv and pool branches side by side). The
paper gives no filter counts for its modules: each is v3's corresponding one (the fifth 17x17
module repeats v3's 160-map one). Its auxiliary head has batch norm on its convolutions only;
v3's "BN-auxiliary" also on its 768-map layer.
"""
from functools import partial

from alexnet_tf1.models import inception
from alexnet_tf1.models.inception import block
from alexnet_tf1.models.spec import ModelSpec

STEM = (
    block('Conv2d_1a_3x3', '3x3/2V-32'),          # 149x149x32
    block('Conv2d_2a_3x3', '3x3V-32'),            # 147x147x32
    block('Conv2d_2b_3x3', '3x3-64'),             # 147x147x64
    block('MaxPool_3a_3x3', 'max3/2V'),           # 73x73x64
)


def _17x17(name, c, aux=False):                   # Figure 6, n = 7
    return block(name, '1x1-192', f'1x1-{c} 1x7-{c} 7x1-192',
                 f'1x1-{c} 7x1-{c} 1x7-{c} 7x1-{c} 1x7-192', 'avg3 1x1-192', aux=aux)


_TO_17 = block('Mixed_6a', '3x3/2V-384', '1x1-64 3x3-96 3x3/2V-96', 'max3/2V')    # 768
_TO_8 = block('Mixed_7a', '1x1-192 3x3/2V-320', '1x1-192 1x7-192 7x1-192 3x3/2V-192',
              'max3/2V')                                                              # 1280
_8x8 = ('1x1-320', '1x1-384 [1x3-384 3x1-384]', '1x1-448 3x3-384 [1x3-384 3x1-384]',
        'avg3 1x1-192')                           # Figure 7, 2048 maps

V3 = STEM + (
    block('Conv2d_3b_1x1', '1x1V-80'),            # 73x73x80
    block('Conv2d_4a_3x3', '3x3V-192'),           # 71x71x192
    block('MaxPool_5a_3x3', 'max3/2V'),           # 35x35x192
    block('Mixed_5b', '1x1-64', '1x1-48 5x5-64', '1x1-64 3x3-96 3x3-96', 'avg3 1x1-32'),
    block('Mixed_5c', '1x1-64', '1x1-48 5x5-64', '1x1-64 3x3-96 3x3-96', 'avg3 1x1-64'),
    block('Mixed_5d', '1x1-64', '1x1-48 5x5-64', '1x1-64 3x3-96 3x3-96', 'avg3 1x1-64'),
    _TO_17,
    _17x17('Mixed_6b', 128), _17x17('Mixed_6c', 160), _17x17('Mixed_6d', 160),
    _17x17('Mixed_6e', 192, aux=True),
    _TO_8,
    block('Mixed_7b', *_8x8),
    block('Mixed_7c', *_8x8),
)

V2 = STEM + (
    block('Conv2d_3b_3x3', '3x3V-80'),            # 71x71x80
    block('Conv2d_4a_3x3', '3x3/2V-192'),         # 35x35x192
    block('Conv2d_4b_3x3', '3x3-288'),            # 35x35x288
    *(block(f'Mixed_5{c}', '1x1-64', '1x1-48 3x3-64', '1x1-64 3x3-96 3x3-96', 'avg3 1x1-64')
      for c in 'bcd'),                            # Figure 5, 288 maps
    _TO_17,
    _17x17('Mixed_6b', 128), _17x17('Mixed_6c', 160), _17x17('Mixed_6d', 160),
    _17x17('Mixed_6e', 160), _17x17('Mixed_6f', 192, aux=True),
    _TO_8,
    block('Mixed_7b', *_8x8),
    block('Mixed_7c', *_8x8),
)

# parameters with the 1000-way top (batch norm's moving statistics included, as Keras counts)
# (v2's derived from Table 1 and the figures in tests/test_inception.py)
PAPER_TOTAL = {'inception-v3': 23_851_784, 'inception-v2': 25_973_512}
# (source, set, top-1 error %, top-5 error %), single model, single crop
PUBLISHED = {
    'inception-v3': (('paper, 1 model, 1 crop (299)', 'ILSVRC-2012 val', 21.2, 5.6),),
    'inception-v2': (),
}
SPECS = tuple(ModelSpec(name, 1, table, partial(inception.build, table=table, bn_aux=bn_aux),
                        PAPER_TOTAL[name], published=PUBLISHED[name])
              for name, table, bn_aux in (('inception-v2', V2, False), ('inception-v3', V3, True)))
