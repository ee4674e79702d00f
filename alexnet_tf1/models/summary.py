"""python -m alexnet_tf1.models.summary --model alexnet [--gpus cpu] [--json]

One row per layer and tower: device, output shape, parameters; the paper's figures beside.
"""
import argparse
import json
import sys

import numpy as np

from alexnet_tf1 import config as config_mod, devices, models, options

from alexnet_tf1.training import graph
from alexnet_tf1.errors import OneLineParser


def layer_rows(model='alexnet', gpus='cpu', cfg=None):
    """[{'name', 'tower', 'device', 'output_shape', 'params'}] in the paper's order."""
    cfg = cfg or config_mod.defaults_for(model)
    placement = devices.resolve(gpus, towers=models.get(model).towers)
    g = graph.build(cfg, placement, train=False)
    rows = []
    for name, tensors in g.net.end_points.items():
        for tower, y in enumerate(tensors):
            if y is None:
                continue
            p = g.net.params.get((name, tower), {})
            rows.append({
                'name': name, 'tower': tower, 'device': y.device or '',
                'output_shape': [int(d) for d in y.shape[1:]],
                'params': int(sum(np.prod(v.shape) for v in p.values())),
            })
    return rows


def summarise(model='alexnet', gpus='cpu', **switches):
    """switches: the ablations of config.py (use_lrn, pool, activation), for the models that
    have them (models.SWITCHES)."""
    options.check_switches(model, switches)
    cfg = config_mod.defaults_for(model, **{k: v for k, v in switches.items() if v is not None})
    rows = layer_rows(model, gpus, cfg)
    return {'model': model, 'layers': rows, 'total_params': sum(r['params'] for r in rows),
            'switches': {k: getattr(cfg, k) for k in models.SWITCHES if model in models.SWITCHES[k]}}


def _table(s, paper, paper_total):
    out = [f"{'layer':<16} {'tower':>5}  {'device':<16} {'output':>12} {'params':>12}   "
           f"paper: neurons, params (all towers)"]
    seen = set()
    for r in s['layers']:
        shape = 'x'.join(str(d) for d in r['output_shape'])
        ref = ''
        if r['name'] in paper and r['name'] not in seen:
            seen.add(r['name'])
            neurons, params = paper[r['name']]
            ref = f'{neurons:>11,} {params:>12,}'
        out.append(f"{r['name']:<16} {r['tower']:>5}  {r['device']:<16} {shape:>12} "
                   f"{r['params']:>12,}   {ref}")
    out.append(f"{'total':<16} {'':>5}  {'':<16} {'':>12} {s['total_params']:>12,}   "
               f"{'':>11} {paper_total:>12,}")
    return '\n'.join(out)


def main(argv=None):
    ap = OneLineParser(prog='python -m alexnet_tf1.models.summary', description=__doc__.split('\n')[2])
    ap.add_argument('--model', default='alexnet', choices=sorted(models.MODELS))
    ap.add_argument('--gpus', default='auto', help="'auto', 'cpu', or GPU ids like '0,1'")
    ap.add_argument('--json', action='store_true', help='print one JSON object')
    ap.add_argument('--lrn', dest='use_lrn', action=argparse.BooleanOptionalAction,
                    help="the paper's ablations, as run_train.py takes them")
    ap.add_argument('--pool', choices=['3x3', '2x2'])
    ap.add_argument('--activation', choices=['relu', 'tanh'])
    args = ap.parse_args(argv)
    try:
        s = summarise(args.model, args.gpus, use_lrn=args.use_lrn, pool=args.pool,
                      activation=args.activation)
    except (devices.DeviceError, options.OptionError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(s))
    else:
        spec = models.get(args.model)
        print(_table(s, spec.paper_layers, spec.paper_total))
        if s['switches']:
            print('switches: ' + ', '.join(f'{k} {v}' for k, v in s['switches'].items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
