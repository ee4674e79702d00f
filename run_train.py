"""Train a model the way its paper did: python run_train.py [--gpus 0,1] [--data-dir DIR]."""
import argparse
import sys

from alexnet_tf1 import options, presets
from alexnet_tf1.config import MODEL_DEFAULTS
from alexnet_tf1.errors import OneLineParser


def parser():
    ap = OneLineParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Unset options come from the preset for the data set:\n' + presets.describe() +
               '\nWithout --data-dir the built-in sample set is generated and prepared under '
               'data/ on first use, and the sample preset applies.')
    return options.add_flags(ap, MODEL_DEFAULTS)


def main(argv=None):
    given = options.given_flags(parser().parse_args(argv))
    from alexnet_tf1.errors import UserError
    try:
        if given.get('job_name'):       # one of many machines (README "Running on a cluster")
            from alexnet_tf1.training import cluster
            return cluster.run(given)
        from alexnet_tf1.training import trainer
        return trainer.run(given)
    except UserError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
