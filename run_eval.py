"""Evaluate a checkpoint: python run_eval.py [--train-dir DIR | --checkpoint PATH ...].

Scores the validation split with the centre crop and with 10 crops (softmax averaged), prints
top-1/top-5 error beside the published figures, and writes eval.json beside the checkpoint.
--checkpoint A B C scores an ensemble: the members' softmax averaged, as the paper's 5 CNNs.
--images FILE... prints the top-5 classes for your own pictures and writes a PNG sheet.
--neighbours FILE... draws the six training images nearest each picture (Figure 4, right).
"""
import argparse
import os
import sys

from alexnet_tf1.config import MODEL_DEFAULTS
from alexnet_tf1.errors import OneLineParser, at_least


def parser():
    ap = OneLineParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', default=None, choices=sorted(MODEL_DEFAULTS), metavar='MODEL',
                    help='refuse a checkpoint of another model; with --init-from, the model '
                         'the file is for (' + ', '.join(sorted(MODEL_DEFAULTS)) + ')')
    ap.add_argument('--train-dir', help='default checkpoints/<model> (alexnet)')
    ap.add_argument('--checkpoint', nargs='+', metavar='PATH',
                    help="a checkpoint prefix (dir/model.ckpt-N), a directory, or 'best' (the "
                         "train dir's best by validation error); default the latest. Several: an "
                         'ensemble, each resolved the same way (models and input sizes may '
                         "differ, classes may not), their softmax averaged, each member's "
                         'own crops; eval-ensemble.json goes beside the first (or --out)')
    ap.add_argument('--data-dir', help="a prepared directory (default: the (first) checkpoint's "
                                       'own)')
    ap.add_argument('--out', metavar='FILE.json',
                    help='where the results go (default eval.json beside the checkpoint, '
                         'eval-ensemble.json beside the first member of an ensemble)')
    ap.add_argument('--init-from', metavar='FILE',
                    help='published weights instead of a checkpoint: bvlc_alexnet.npy (the '
                         'default --model alexnet), bvlc_reference_caffenet.npy (--model '
                         'caffenet), bvlc_googlenet.npy (--model googlenet), a Keras VGG16/19 '
                         '.h5 or .weights.h5 (vgg-d / vgg-e, told from the file). Scores a '
                         '--data-dir, or with --images alone classifies pictures into the 1000 '
                         'ILSVRC classes')
    ap.add_argument('--mean', metavar='FILE.npy',
                    help="with --init-from: the mean image the weights were trained with (Caffe's "
                         'ilsvrc_2012_mean.npy, (3, 256, 256) BGR, or (H, W, 3) RGB); default the '
                         "published per-channel mean (alexnet_tf1/weights/means.txt)")
    ap.add_argument('--gpus', default='auto')
    ap.add_argument('--precision', choices=('fp32', 'bf16'),
                    help="the model's arithmetic (bf16: a CPU with AVX512_BF16 or AMX); default "
                         "the checkpoint's run's own, fp32 for --init-from weights")
    ap.add_argument('--batch-size', type=at_least(1), default=32)
    pictures = ap.add_mutually_exclusive_group()
    pictures.add_argument('--images', nargs='+', metavar='FILE', help='classify these pictures')
    pictures.add_argument('--neighbours', nargs='+', metavar='FILE',
                          help="the paper's Figure 4 (right): the six training images whose "
                               'last-hidden-layer vectors (fc7 for AlexNet) are nearest each '
                               "picture's; prints their classes and distances, draws a PNG. The "
                               "training set's vectors are computed once and cached beside the "
                               'checkpoint (<checkpoint>.features.npy, float16: 8,192 bytes per '
                               'image for AlexNet, 10.5 GB for ImageNet\'s 1.28M), made again '
                               'when the checkpoint or the data change')
    ap.add_argument('--sheet', help='where the top-5 or neighbours PNG goes (default top5.png / '
                                    'neighbours.png beside the checkpoint; with --init-from, '
                                    'which has none, in the current directory)')
    return ap


def main(argv=None):
    args = parser().parse_args(argv)
    from alexnet_tf1 import models
    from alexnet_tf1.evaluation import ensemble, evaluate, neighbours
    from alexnet_tf1.training import checkpoints
    from alexnet_tf1.weights import imagenet, importers, keras_inception, keras_vgg
    from alexnet_tf1.errors import UserError
    from alexnet_tf1.training.start import default_train_dir
    from alexnet_tf1.data.reader import DataError, open_prepared
    try:
        train_dir = args.train_dir or default_train_dir(args.model or 'alexnet')
        if args.mean and not args.init_from:    # a checkpoint keeps the mean it trained with
            raise UserError('--mean goes with --init-from published weights; a checkpoint '
                            'takes the mean recorded with it')
        if args.checkpoint and len(args.checkpoint) > 1:
            if args.init_from or args.images or args.neighbours or args.precision:
                raise UserError('an ensemble (several --checkpoint) scores the validation '
                                'split only, each member in its run\'s own precision: no '
                                '--init-from, --images, --neighbours or --precision')
            members = ensemble.resolve_members(args.checkpoint, train_dir, args.model)
            result, _ = ensemble.score(members, args.data_dir, args.gpus, args.batch_size)
            print(ensemble.report(result, models.get(result['members'][0]['model']).published))
            out = args.out or ensemble.default_path(result)
            print(f'wrote {evaluate.write_result(result, out)}')
            return 0
        if args.init_from:
            if args.neighbours and not args.data_dir:
                raise DataError('--neighbours finds training images: give the prepared '
                                '--data-dir they come from')
            if not (args.data_dir or args.images):
                raise DataError('--init-from scores a prepared --data-dir, or classifies '
                                '--images FILE ... (no data directory needed)')
            model = args.model or keras_vgg.vgg_variant(args.init_from) or \
                keras_inception.detect(args.init_from) or (
                    'vgg-d' if args.init_from.endswith('.h5') else 'alexnet')
            prepared = open_prepared(args.data_dir) if args.data_dir else None
            restored = evaluate.Restored.from_weights(
                args.init_from, model, prepared.num_classes if prepared else 1000, args.gpus,
                mean=args.mean, precision=args.precision or 'fp32')
            mean = restored.state['input_mean']      # args.mean, else the weights' own
            print(f'{args.init_from}: {model} weights, input RGB minus '
                  + imagenet.describe_mean(mean))
            if restored.left:
                print(importers.describe_left(restored.left))
            prepared = restored.data(prepared) if prepared else \
                imagenet.for_images(mean, args.init_from, restored.config.input_size)
            path = args.init_from
        else:
            path = checkpoints.resolve(args.checkpoint and args.checkpoint[0], train_dir)
            restored = evaluate.Restored(path, args.gpus, expect_model=args.model,
                                         precision=args.precision)
            print(evaluate.describe_checkpoint(path, restored.state))
            better = None if args.checkpoint else checkpoints.better_best(path, restored.state,
                                                                          train_dir)
            if better:
                print(f'note: {better[0]} scored {better[1]:.1%} validation top-1 error against '
                      f'{better[2]:.1%} for the latest; run_eval.py --checkpoint best scores it')
            prepared = restored.data(open_prepared(args.data_dir or restored.state['data_dir']))
        if prepared.num_classes != restored.config.num_classes:
            raise DataError(f'{prepared.path} has {prepared.num_classes} classes, the checkpoint '
                            f'{restored.config.num_classes}')
        def sheet(name):    # beside the checkpoint; published weights have none: here
            return args.sheet or (name if args.init_from else
                                  os.path.join(os.path.dirname(path), name))
        if args.images:
            print('\n'.join(evaluate.classify_files(restored, prepared, args.images,
                                                     sheet('top5.png'))))
            return 0
        if args.neighbours:
            print('\n'.join(neighbours.show(restored, prepared, args.neighbours,
                                             sheet('neighbours.png'), args.batch_size)))
            return 0
        result = evaluate.evaluate(restored, prepared, args.batch_size)
        print(evaluate.report(result, models.get(result['model']).published))
        print(f'wrote {evaluate.write_result(result, args.out)}')
        return 0
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
