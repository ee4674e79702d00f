"""python -m alexnet_tf1.weights.export CHECKPOINT OUT

A checkpoint (or train dir) of this project written in its model's published layout, so that
other code that reads those files reads it: AlexNet / CaffeNet as bvlc_alexnet.npy, GoogLeNet
as bvlc_googlenet.npy (caffe-tensorflow's layout), VGG-D / VGG-E as a Keras VGG16 / VGG19
.h5. The files are in Caffe's input convention, BGR: the first conv's input channels are
reversed on the way out, so that --init-from (which reverses them back) gives the same net.
"""
import argparse
import os
import sys

from alexnet_tf1.errors import OneLineParser


# model -> (the layer that reads the image, the published file's extension)
LAYOUTS = {'alexnet': ('conv1', '.npy'), 'caffenet': ('conv1', '.npy'),
           'googlenet': ('conv1', '.npy'), 'vgg-d': ('conv1_1', '.h5'), 'vgg-e': ('conv1_1', '.h5')}


def export(checkpoint, out):
    from alexnet_tf1.weights import caffe_npy, keras_vgg
    from alexnet_tf1.training import checkpoints
    from alexnet_tf1.errors import UserError
    from alexnet_tf1.evaluation.evaluate import Restored
    prefix = checkpoints.resolve(checkpoint=checkpoint)
    model = checkpoints.read_state(prefix)['model']
    if model not in LAYOUTS:
        raise checkpoints.CheckpointError(f'{model} has no published layout; export takes '
                                          f'alexnet, caffenet, googlenet, vgg-d or vgg-e')
    first, ext = LAYOUTS[model]
    # np.save would quietly add .npy to another name, and readers tell .h5 files by their name
    if not out.endswith(ext):
        raise UserError(f'{out}: {model} is written in its published layout, a {ext} file')
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UserError(f'{out}: its directory does not exist')
    r = Restored(prefix, 'cpu', precision='fp32')      # the variables alone: fp32 in any run
    with r.g.graph.as_default():    # RGB -> BGR in the loaded variables; the checkpoint stays as it is
        towers = [k for k in r.g.net.params if k[0] == first]
        for key in towers:
            w = r.g.net.params[key]['w']
            w.load(r.sess.run(w)[:, :, ::-1, :], r.sess)
    if model in ('alexnet', 'caffenet'):
        caffe_npy.export_caffe_alexnet_npy(r.sess, r.g.net, out)
    elif model == 'googlenet':
        caffe_npy.export_caffe_googlenet_npy(r.sess, r.g.net, out)
    else:
        keras_vgg.export_keras_vgg_h5(r.sess, r.g.net, out)
    r.sess.close()
    return model


def main(argv=None):
    ap = OneLineParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('checkpoint', help='a checkpoint prefix or a train dir (its newest)')
    ap.add_argument('out', help='the file to write (.npy for AlexNet, GoogLeNet; .h5 for VGG)')
    args = ap.parse_args(argv)
    from alexnet_tf1.errors import UserError
    try:
        model = export(args.checkpoint, args.out)
    except (UserError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    print(f'wrote {args.out}: {model} in its published layout (BGR input); read it back with '
          f'--init-from {args.out} --model {model}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
