"""Train a model the way its paper did: python run_train.py [--gpus 0,1] [--data-dir DIR]."""
import argparse
import sys

from alexnet_tf1 import presets
from alexnet_tf1.config import MODEL_DEFAULTS
from alexnet_tf1.errors import OneLineParser


def parser():
    ap = OneLineParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Unset options come from the preset for the data set:\n' + presets.describe() +
               '\nWithout --data-dir the built-in sample set is generated and prepared under '
               'data/ on first use, and the sample preset applies.')
    ap.add_argument('--model', default='alexnet', choices=sorted(MODEL_DEFAULTS),
                    metavar='MODEL', help=', '.join(sorted(MODEL_DEFAULTS)))
    ap.add_argument('--data-dir', help='a prepared directory (python -m alexnet_tf1.data.prepare)')
    ap.add_argument('--gpus', default='auto',
                    help="'auto', 'cpu', 'cpu:N' (N logical CPUs) or GPU ids like '0,1'; more "
                         "devices than towers = data-parallel replicas, --batch-size each")
    ap.add_argument('--preset', choices=sorted(presets.PRESETS), help='recipe (default: by data set)')
    ap.add_argument('--batch-size', type=int)
    ap.add_argument('--epochs', type=int)
    ap.add_argument('--lr', type=float, help='initial learning rate (paper 0.01)')
    ap.add_argument('--momentum', type=float)
    ap.add_argument('--weight-decay', type=float)
    ap.add_argument('--lr-schedule', choices=['plateau', 'step', 'cosine', 'exponential'],
                    help='plateau: /10 when val error stops improving (x3, the paper); step: /10 '
                         'every --step-epochs; cosine: down to 0 at the last epoch; '
                         'exponential: x --lr-factor every --step-epochs (Inception)')
    ap.add_argument('--lr-factor', type=float,
                    help='what plateau / step multiply the rate by (0.1), or exponential (0.94)')
    ap.add_argument('--warmup-epochs', type=float,
                    help='raise the rate linearly from 0 over this many epochs (Goyal et al.)')
    ap.add_argument('--optimizer', choices=['momentum', 'rmsprop'],
                    help="momentum: the paper's rule (default); rmsprop: decay 0.9, momentum "
                         '0.9, epsilon 1.0 (the Inception v3 recipe)')
    ap.add_argument('--label-smoothing', type=float, metavar='S',
                    help='targets 1 - S on the label, S / classes on each class (v3: 0.1)')
    ap.add_argument('--clip-norm', type=float, metavar='N',
                    help="rescale the gradients to a global norm of at most N (v3: 2.0)")
    ap.add_argument('--bn-decay', type=float, metavar='D',
                    help="batch norm's moving averages: m <- D m + (1 - D) batch value "
                         "(Keras' 0.99; shorter runs need less)")
    ap.add_argument('--patience', type=int, help='plateau: epochs without improvement before /10')
    ap.add_argument('--step-epochs', type=int)
    ap.add_argument('--init-bias', type=float,
                    help="AlexNet: the biases the paper sets to 1 - 1 (paper) or 0.1 (Caffe)")
    ap.add_argument('--init', choices=['paper', 'glorot'],
                    help="weights: the paper's rule, or Glorot-uniform (VGG's alternative)")
    ap.add_argument('--lighting', type=float, help='PCA lighting std (paper 0.1; 0 turns it off)')
    ap.add_argument('--flip', action=argparse.BooleanOptionalAction,
                    help='mirror training images with p = 0.5 (the ImageNet papers; --no-flip '
                         'for digits, as LeNet-5)')
    ap.add_argument('--crop', action=argparse.BooleanOptionalAction,
                    help='random crops of the stored images (default); --no-crop trains on the '
                         "whole picture scaled to the input size (the AlexNet paper's overfitting "
                         'case, section 4.1)')
    abl = ap.add_argument_group('ablations', "the AlexNet paper's switches, kept in the run's "
                                "configuration (README \"The paper's experiments\")")
    abl.add_argument('--lrn', dest='use_lrn', action=argparse.BooleanOptionalAction,
                     help='--no-lrn: no local response normalisation (alexnet, caffenet, '
                          'alexnet-one-tower, googlenet)')
    abl.add_argument('--pool', choices=['3x3', '2x2'],
                     help="max pooling: '3x3' stride 2 (overlapping, the paper's) or '2x2' "
                          'stride 2 (s = z = 2)')
    abl.add_argument('--activation', choices=['relu', 'tanh'],
                     help='the hidden neurons (Figure 1; the AlexNets and cifar4)')
    ap.add_argument('--shift', type=int, help='move each training image by up to N pixels each '
                    'way (for inputs as large as the crop, e.g. digits; 0: never)')
    ap.add_argument('--init-from', metavar='FILE',
                    help='start from published weights: bvlc_alexnet.npy (alexnet; switches to '
                         "Caffe's LRN), a Keras VGG16/19 .h5 (vgg-d / vgg-e) or InceptionV3 / "
                         "InceptionResNetV2 .h5 (inception-v3 / -resnet-v2); or, for VGG B-E, "
                         "a trained VGG-A's train dir (its first four convs and the fc layers, "
                         "as the paper did); the last layer "
                         'is left out when the data has other than 1000 classes')
    ap.add_argument('--train-layers', type=_names, metavar='L1,L2',
                    help='fine-tuning: update only these layers (e.g. fc7,fc8); the others stay '
                         'as loaded, never written by the optimizer')
    ap.add_argument('--lr-mult', type=_mults, metavar='L=M[:MB],...',
                    help="Caffe's lr_mult: layer L steps at M x the rate (its biases at MB x, "
                         "default M), e.g. fc8=10:20")
    ap.add_argument('--mean', metavar='FILE.npy',
                    help='with --init-from published weights: the mean image they were trained '
                         "with (Caffe's ilsvrc_2012_mean.npy (3, 256, 256) BGR, or (H, W, 3) "
                         'RGB); default their per-channel mean (alexnet_tf1/published/means.txt)')
    ap.add_argument('--train-dir', help='default checkpoints/<model>')
    ap.add_argument('--seed', type=int, help='default 0')
    ap.add_argument('--restart', action='store_true',
                    help='start over (the old train dir is renamed, not deleted)')
    ap.add_argument('--save-every', type=int, help='checkpoint every N steps (and at each epoch end)')
    ap.add_argument('--keep', type=int, default=3, help='keep the last K checkpoints (+ the best)')
    ap.add_argument('--print-freq', type=int)
    ap.add_argument('--input-size', type=int, help=argparse.SUPPRESS)
    dist = ap.add_argument_group('cluster', 'between-graph replication; README "Running on a cluster"')
    dist.add_argument('--ps-hosts', help='host:port,... of the parameter servers')
    dist.add_argument('--worker-hosts', help='host:port,... of the workers (worker 0 is the chief)')
    dist.add_argument('--job-name', choices=['ps', 'worker'])
    dist.add_argument('--task-index', type=int, default=0)
    dist.add_argument('--async', dest='async_updates', action='store_true',
                      help='apply each worker\'s gradients as they come (default: synchronous)')
    return ap


def _names(text):
    names = [n.strip() for n in text.split(',') if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError('give layer names, e.g. fc7,fc8')
    return names


def _mults(text):
    out = {}
    for item in _names(text):
        layer, _, value = item.partition('=')
        try:
            w, _, b = value.partition(':')
            out[layer] = [float(w), float(b or w)]
        except ValueError:
            raise argparse.ArgumentTypeError(f'{item!r}: expected LAYER=MULT or '
                                             f'LAYER=MULT:BIAS_MULT, e.g. fc8=10:20') from None
    return out


def main(argv=None):
    args = parser().parse_args(argv)
    from alexnet_tf1.errors import UserError
    try:
        if args.job_name:       # one of many machines (README "Running on a cluster")
            from alexnet_tf1 import cluster
            return cluster.run(args)
        from alexnet_tf1 import train
        return train.run(args)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
