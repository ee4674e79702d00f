"""Classic ImageNet-era CNNs as hand-written TensorFlow 1 graphs."""
import os

# the clone's top folder: run_train.py, run_eval.py, checkpoints/ and data/ live there
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
