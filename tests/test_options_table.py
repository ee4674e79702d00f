"""The options table (alexnet_tf1/options.py) against what reads it: run_train.py's flags, the
run state a fresh run saves, and the signatures of the consumers each row hands its value to."""
import dataclasses
import inspect
import json

import pytest

import run_train
from alexnet_tf1 import options
from alexnet_tf1.data import pipeline
from alexnet_tf1.data.reader import open_prepared
from alexnet_tf1.training import graph, objective, start
from tiny_run import tiny_prepared

# a value other than every preset's for each recipe option, given on the command line
OTHER = {'batch_size': '3', 'epochs': '5', 'lr': '0.0123', 'momentum': '0.5',
         'weight_decay': '0.001', 'lr_schedule': 'step', 'lr_factor': '0.2', 'warmup_epochs': '1.5',
         'optimizer': 'rmsprop', 'label_smoothing': '0.05', 'clip_norm': '3.0', 'bn_decay': '0.5',
         'patience': '7', 'step_epochs': '9', 'init_bias': '0.3', 'init': 'paper',
         'lighting': '0.02', 'flip': None, 'crop': None, 'use_lrn': None, 'pool': '2x2',
         'activation': 'tanh', 'shift': '1', 'init_from': None, 'train_layers': 'fc7,fc8',
         'lr_mult': 'fc8=10:20', 'seed': '11', 'input_size': '83', 'precision': 'bf16'}


def _argv():
    argv = ['--model', 'alexnet']
    for name, value in OTHER.items():
        o = options.BY_NAME[name]
        if o.type is bool:
            argv.append('--no-' + o.spelling[2:])
        elif value is not None:
            argv += [o.spelling, value]
    return argv


def test_every_recipe_option_has_a_value_to_try():
    assert set(OTHER) == {o.name for o in options.OPTIONS if o.kept}


def test_a_fresh_run_saves_every_flag_given_where_a_resume_reads_it_back(tmp_path):
    prepared = open_prepared(tiny_prepared(str(tmp_path)))
    given = options.given_flags(run_train.parser().parse_args(_argv()))
    opts = options.resolve(given, prepared.dataset)
    state = json.loads(json.dumps(start._fresh_state(opts, prepared)))  # as a checkpoint holds it
    for o in options.OPTIONS:
        if o.kept and o.name in given:
            kept, want = options.kept_value(o, state), given[o.name]
            assert kept == (pytest.approx(want) if isinstance(want, float) else want), o.name
    assert options.changed(given, state) == []
    # and each one given otherwise is named by the resume check, with the value kept
    for o in options.RECIPE:
        if o.name in given and o.type in (int, float):
            other = given[o.name] + 1
            assert options.changed({o.name: other}, state) == [(o.spelling, other, given[o.name])]


def test_each_value_handed_on_is_an_argument_its_consumer_takes():
    takes = {'data': set(inspect.signature(pipeline.train_batches).parameters),
             'graph': set(inspect.signature(graph.build).parameters),
             'step': {f.name for f in dataclasses.fields(objective.Step)}}
    for o in options.OPTIONS:
        for consumer, argument in o.to:
            assert argument in takes[consumer], (o.name, consumer, argument)


def test_every_flag_of_run_train_is_a_row_and_every_row_with_a_flag_is_a_flag():
    parser = run_train.parser()
    flags = {a.dest for a in parser._actions if a.dest != 'help'}
    assert flags == {o.name for o in options.OPTIONS if o.flag != ''}
