"""The mutations `python -m tests.mutations` applies: (name, what it breaks, file, text, its
replacement, the default-run tests that should catch it). Each text occurs once in its file."""

AL = 'tests/test_alexnet_layers.py::'
TOW = 'tests/test_alexnet_towers.py::'
PIPE = 'tests/test_data_pipeline.py::'
BAD = 'tests/test_bad_inputs.py::test_bad_invocation_is_one_line_naming_the_culprit_and_touches_nothing'
BIT = ('tests/test_resume_bit_exact.py::test_mid_epoch_sigkill_resumes_bit_for_bit',)
BN_RMS = ('tests/test_resume_bn_rmsprop.py::test_batch_norm_statistics_and_rmsprop_slots_survive_'
          'sigkill_mid_epoch',)
VGG19 = ('tests/test_keras_vgg19.py::test_vgg19_file_gives_keras_logits',)

MUTATIONS = [
    ('lr-ignored', 'the learning rate fed to a step is ignored (every step at 0.01)',
     'alexnet_tf1/training/graph.py',
     'train_op = objective.apply(step, grads, lr, global_step)',
     'train_op = objective.apply(step, grads, 0.01, global_step)',
     (AL + 'test_update_is_the_papers_momentum_rule_across_a_learning_rate_change',)),
    ('labels-shuffled', 'training batches carry the labels of other images',
     'alexnet_tf1/data/pipeline.py',
     "yield (resize_batch(out, resize) if resize else out), s.labels[idx]",
     "yield (resize_batch(out, resize) if resize else out), np.random.permutation(s.labels[idx])",
     ('tests/test_generalises.py::test_two_tower_alexnet_classifies_held_out_sample_images_far_'
      'better_than_chance',)),
    ('momentum-not-restored', 'a resumed run starts its momentum from 0',
     'alexnet_tf1/training/checkpoints.py',
     'self.saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)',
     "self.saver = tf1.train.Saver([v for v in tf1.global_variables() if not "
     "v.op.name.endswith('/momentum')], max_to_keep=keep, save_relative_paths=True)",
     BIT),
    ('dropout-not-keyed-on-step', "dropout's masks come from a stateful op, so a resumed run "
     'draws other masks than the uninterrupted one',
     'alexnet_tf1/nn/ops.py',
     '    if not step:            # a net built outside graph.build',
     '    if True:            # a net built outside graph.build',
     BIT),
    ('lrn-alpha', "LRN's alpha 1e-3 instead of the paper's 1e-4 (section 3.3)",
     'alexnet_tf1/config.py', 'alpha: float = 1e-4', 'alpha: float = 1e-3',
     (AL + 'test_lrn_equals_the_papers_formula_inside_each_tower',)),
    ('lrn-span', "LRN over 7 adjacent maps instead of the paper's n = 5",
     'alexnet_tf1/config.py', 'depth_radius: int = 2', 'depth_radius: int = 3',
     (AL + 'test_lrn_equals_the_papers_formula_inside_each_tower',)),
    ('towers-cross-at-conv2', 'the towers exchange maps at conv2 instead of conv3 (Figure 2)',
     'alexnet_tf1/models/alexnet.py',
     "Layer('conv2', 'conv', 128,   5, 1,     'SAME',  'own',   1, lrn=True, pool=True),\n"
     "    Layer('conv3', 'conv', 192,   3, 1,     'SAME',  'both',  0),",
     "Layer('conv2', 'conv', 128,   5, 1,     'SAME',  'both',  1, lrn=True, pool=True),\n"
     "    Layer('conv3', 'conv', 192,   3, 1,     'SAME',  'own',  0),",
     (TOW + 'test_conv2_4_5_read_only_their_own_tower',
      TOW + 'test_conv3_and_fc6_to_fc8_read_both_towers')),
    ('mean-not-subtracted', 'training crops keep the mean image (section 2)',
     'alexnet_tf1/data/pipeline.py',
     'np.subtract(imgs[i, y:y + ch, x:x + cw], win.mean[y:y + ch, x:x + cw], out=out[i])',
     'np.subtract(imgs[i, y:y + ch, x:x + cw], 0 * win.mean[y:y + ch, x:x + cw], out=out[i])',
     (PIPE + 'test_mean_is_subtracted_at_the_same_window',)),
    ('lighting-eigval-unscaled', "PCA lighting drops the eigenvalues from alpha_i lambda_i "
     '(section 4.1)',
     'alexnet_tf1/data/pipeline.py',
     'return 255.0 * (alpha * np.asarray(eigval, np.float32)) @ np.asarray(eigvec, np.float32).T',
     'return 255.0 * alpha @ np.asarray(eigvec, np.float32).T',
     (PIPE + 'test_lighting_offset_formula',)),
    ('bn-test-uses-batch-statistics', 'batch norm in test mode normalises with the batch',
     'alexnet_tf1/nn/ops.py',
     "return tf1.nn.fused_batch_norm(x, scale, beta, mean, var, epsilon,\n"
     "                                       is_training=False)[0]",
     "return tf1.nn.fused_batch_norm(x, scale, beta, epsilon=epsilon,\n"
     "                                       is_training=True)[0]",
     ('tests/test_batch_norm.py::test_test_mode_uses_the_moving_averages',)),
    ('damaged-checkpoint-trusted', 'a checkpoint whose files are damaged counts as the latest',
     'alexnet_tf1/training/checkpoints.py',
     "    for path in candidates(train_dir):\n        try:\n            read_state(path)\n"
     "            return path",
     "    for path in candidates(train_dir):\n        try:\n            return path",
     ('tests/test_interrupts.py::test_a_damaged_newest_checkpoint_is_skipped_and_the_one_'
      'before_resumes',
      'tests/test_interrupts.py::test_every_checkpoint_damaged_is_one_line_and_nothing_is_'
      'touched')),
    ('caffe-channels-not-reversed', "the first conv of a Caffe file keeps Caffe's BGR order",
     'alexnet_tf1/weights/files.py',
     "out[name] = (w[:, :, ::-1, :].copy() if name == flip else w, b)",
     "out[name] = (w, b)",
     ('tests/test_published.py::test_imported_caffe_weights_give_caffes_logits_from_rgb_input',)),
    ('changed-flag-accepted-on-resume', 'a resumed run silently takes a changed --lr',
     'alexnet_tf1/options.py', '        if not same:\n',
     "        if not same and o.name != 'lr':\n",
     ('tests/test_train.py::test_resuming_with_a_changed_recipe_is_one_line_naming_the_flags',)),
    ('pooling-not-overlapping', "3x3 pooling at stride 3, not the paper's overlapping stride 2 "
     '(section 3.4)',
     'alexnet_tf1/models/alexnet.py', "POOLS = {'3x3': (3, 2),", "POOLS = {'3x3': (3, 3),",
     ('tests/test_alexnet_table.py::test_each_layer_has_the_papers_output_and_parameters',)),
    ('weight-decay-dropped', 'the loss has no weight decay term (section 5: 0.0005)',
     'alexnet_tf1/training/objective.py', 'if not decay or not weight_decay:', 'if True:',
     (AL + 'test_loss_adds_the_papers_weight_decay_on_the_weights_not_the_biases',)),
    ('weight-decay-not-in-update', 'the update follows the data term alone (the loss still '
     'reports the decay term)',
     'alexnet_tf1/training/graph.py', 'tf1.gradients(total, var_list,', 'tf1.gradients(xent, var_list,',
     (AL + 'test_update_is_the_papers_momentum_rule_across_a_learning_rate_change',)),
    ('no-flips', 'training images are never mirrored (section 4.1)',
     'alexnet_tf1/data/pipeline.py', 'flips = rng.random(n) < 0.5', 'flips = rng.random(n) < 0.0',
     (PIPE + 'test_random_crops_stay_in_range_cover_it_and_flip_half_the_time',)),
    ('ten-crops-without-mirrors', "the 10 crops repeat the five instead of mirroring them "
     '(section 4.1)',
     'alexnet_tf1/data/pipeline.py', 'return np.concatenate([five, five[:, :, ::-1]])',
     'return np.concatenate([five, five])',
     (PIPE + 'test_ten_crops_positions_and_mirrors',)),
    ('top5-is-top1', 'top-5 error counted on the best class only',
     'alexnet_tf1/evaluation/evaluate.py', 'topk = np.mean(~np.any(order[:, :k] == labels, axis=1)) * 100',
     'topk = np.mean(~np.any(order[:, :1] == labels, axis=1)) * 100',
     ('tests/test_eval.py::test_topk_errors_against_hand_counted_cases',)),
    ('init-std', "weights drawn with std 0.1 instead of the paper's 0.01 (section 5)",
     'alexnet_tf1/config.py', 'init_std: float = 0.01', 'init_std: float = 0.1',
     (AL + 'test_initial_weights_are_normal_with_std_001_and_biases_as_the_paper',)),
    ('ten-crop-averages-one-crop', 'the 10-crop score is the centre crop alone',
     'alexnet_tf1/evaluation/evaluate.py', 'pk.append(p[:, :crops].mean(axis=1))', 'pk.append(p[:, 4])',
     ('tests/test_eval.py::test_ten_crop_score_is_the_average_softmax_over_the_papers_ten_crops',)),
    ('plateau-never-drops', 'the plateau schedule never divides the rate by 10',
     'alexnet_tf1/training/schedule.py', 'self.lr *= self.factor', 'self.lr *= 1.0',
     ('tests/test_schedule.py::test_plateau_divides_by_10_after_patience_epochs_without_'
      'improvement_three_times',)),
    ('each-epoch-same-order', 'every epoch shows the images in the same order',
     'alexnet_tf1/data/pipeline.py', 'rng = np.random.default_rng([int(seed), int(epoch)])',
     'rng = np.random.default_rng([int(seed), 0])',
     (PIPE + 'test_each_epoch_is_a_seeded_permutation',)),
    ('label-smoothing-unspread', 'label smoothing puts s on every class instead of s / K',
     'alexnet_tf1/training/objective.py', 'target = tf.one_hot(labels, k) * (1.0 - smoothing) + smoothing / k',
     'target = tf.one_hot(labels, k) * (1.0 - smoothing) + smoothing',
     ('tests/test_update_options.py::test_label_smoothing_is_cross_entropy_with_the_smoothed_'
      'target',)),
    ('rmsprop-ms-from-0', "RMSProp's mean square starts at 0 instead of TF's 1",
     'alexnet_tf1/training/objective.py', 'tf1.ones_initializer(), trainable=False)',
     'tf1.zeros_initializer(), trainable=False)',
     ('tests/test_update_options.py::test_rmsprop_is_tfs_rule_from_ms_1',)),
    ('resume-from-epoch-start', 'a run resumed mid-epoch starts that epoch again from its first '
     'batch',
     'alexnet_tf1/training/loop.py',
     "            print(f\"resuming {path}: epoch {state['epoch'] + 1}",
     "            state['batch_in_epoch'] = 0\n"
     "            print(f\"resuming {path}: epoch {state['epoch'] + 1}",
     BIT),
    ('moving-statistics-not-saved', "batch norm's moving mean and variance are left out of "
     'checkpoints',
     'alexnet_tf1/training/checkpoints.py',
     'self.saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)',
     "self.saver = tf1.train.Saver([v for v in tf1.global_variables() if 'moving_' not in "
     "v.op.name], max_to_keep=keep, save_relative_paths=True)",
     BN_RMS),
    ('rmsprop-slots-not-saved', "RMSProp's mean squares are left out of checkpoints",
     'alexnet_tf1/training/checkpoints.py',
     'self.saver = tf1.train.Saver(max_to_keep=keep, save_relative_paths=True)',
     "self.saver = tf1.train.Saver([v for v in tf1.global_variables() if not "
     "v.op.name.endswith('/rms')], max_to_keep=keep, save_relative_paths=True)",
     BN_RMS),
    ('loss-spike-not-recorded', "a LOSS SPIKE is printed but not kept in the run's state",
     'alexnet_tf1/training/loop.py', "state.setdefault('spikes', []).append(", '[].append(',
     ('tests/test_resume_loss_spikes.py::test_a_loss_spike_is_in_every_later_checkpoint_and_in_'
      'eval_json',)),
    ('no-fsync-before-rename', 'files are renamed into place without being synced to disk',
     'alexnet_tf1/io_util.py', '            os.fsync(f.fileno())\n', '',
     ('tests/test_resume_atomic_writes.py::test_run_json_and_eval_json_are_fsynced_before_their_'
      'rename',)),
    ('epochs-0-accepted', '--epochs 0 on a new run trains nothing and exits 0',
     'alexnet_tf1/options.py', "takes', low=1,", "takes', low=0,",
     (BAD,)),
    ('unreadable-pictures-exit-0', 'run_eval --images exits 0 when no picture could be read',
     'alexnet_tf1/evaluation/evaluate.py', '    if all(why for *_, why in read):\n        raise UserError(',
     '    if False:\n        raise UserError(',
     (BAD,)),
    ('keras-vgg-channels-not-reversed', "a Keras VGG file's first conv keeps its BGR order",
     'alexnet_tf1/weights/keras_vgg.py', "'block1_conv1' if rgb_input else None", 'None',
     VGG19),
    ('vgg-from-a-wrong-layers', "VGG B-E take A's conv1_1, conv1_2, conv2_1, conv2_2 instead of "
     'its first four convolutional layers (section 3.1)',
     'alexnet_tf1/weights/importers.py',
     "VGG_FROM_A = ('conv1_1', 'conv2_1', 'conv3_1', 'conv3_2', 'fc6', 'fc7', 'fc8')",
     "VGG_FROM_A = ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2', 'fc6', 'fc7', 'fc8')",
     ('tests/test_vgg_from_a.py::test_deeper_nets_take_a_s_first_four_convs_and_three_fcs_and_'
      'keep_the_rest_random',)),
    ('flops-single-counted', 'a multiply-add counted as one FLOP, not two',
     'alexnet_tf1/bench/flops.py', 'return 2 * k * n', 'return k * n',
     ('tests/test_bench.py::test_alexnet_two_towers_is_1_45_gflops_per_image',)),
    ('export-keeps-rgb', "an exported bvlc_alexnet.npy keeps RGB instead of Caffe's BGR",
     'alexnet_tf1/weights/export.py', 'w.load(r.sess.run(w)[:, :, ::-1, :], r.sess)',
     'w.load(r.sess.run(w), r.sess)',
     ('tests/test_export.py::test_alexnet_exports_as_bvlc_alexnet_npy',)),
    ('conv1-padded', "conv1 pads its input ('SAME') instead of the paper's 227 -> 55 without "
     'padding',
     'alexnet_tf1/models/alexnet.py',
     "Layer('conv1', 'conv', 48,   11, 4,     'VALID', 'image',",
     "Layer('conv1', 'conv', 48,   11, 4,     'SAME', 'image',",
     (TOW + 'test_conv1_of_each_tower_sees_the_whole_image',)),
    ('experiment-arm-counted-done', 'an experiment killed mid-arm and run again takes the '
     'unfinished arm for finished',
     'alexnet_tf1/experiments/paper.py', "done = state and state['epoch'] >= state['epochs']",
     'done = bool(state)',
     ('tests/test_experiments.py::test_an_experiment_killed_with_sigkill_continues_its_arm_to_the_'
      'uninterrupted_values',)),
    ('loss-window-not-resumed', 'a resumed run forgets the recent losses, so it cannot flag a '
     'LOSS SPIKE in its first 25 steps',
     'alexnet_tf1/training/loop.py', "self.watch.recent = list(state.get('recent_losses', []))",
     'self.watch.recent = []',
     ('tests/test_resume_loss_spikes.py::test_a_loss_spike_is_in_every_later_checkpoint_and_in_'
      'eval_json',)),
    ('cluster-nan-only-on-chief', 'in a cluster run only the chief stops on a NaN loss; the other '
     'workers train on',
     'alexnet_tf1/training/loop.py', "if not np.isfinite(out['loss']):",
     "if self.saves and not np.isfinite(out['loss']):",
     ('tests/test_cluster.py::test_a_diverging_cluster_stops_every_worker_and_saves_nothing',)),
    ('resumed-cosine-keeps-its-end', 'a run resumed with more --epochs keeps the cosine of its '
     'old epoch count (its rate at 0 from there on)',
     'alexnet_tf1/training/loop.py', "dict(state['schedule'], epochs=state['epochs'])",
     "dict(state['schedule'])",
     ('tests/test_train.py::test_more_epochs_on_resume_move_where_a_cosine_reaches_0',)),
    ('cluster-loss-unwatched', 'a cluster run watches no loss: no LOSS SPIKE, none kept',
     'alexnet_tf1/training/loop.py', "note = self._spike(out['xent'], epoch)",
     "note = {} if self.cluster else self._spike(out['xent'], epoch)",
     ('tests/test_cluster.py::test_a_loss_spike_is_printed_by_its_worker_and_kept_in_the_chiefs_'
      'checkpoints',)),
    ('checkpoint-of-another-graph-traceback', 'a checkpoint lacking a variable of the graph '
     'ends run_eval in a traceback and run_train calls it damaged',
     'alexnet_tf1/training/checkpoints.py', '        if not (found or shape):\n',
     '        if True:\n',
     ('tests/test_compat_format.py::test_a_checkpoint_lacking_a_variable_is_one_line_naming_it_'
      'and_is_kept',)),
    ('bf16-on-intel-without-amx', 'bf16 is let through on an Intel CPU without AMX, where it '
     'runs slower than fp32',
     'alexnet_tf1/nn/cpu_kernels.py', "if path == 'avx512_bf16' and _cpu_vendor() == 'GenuineIntel':",
     "if path == 'avx512_bf16' and _cpu_vendor() == 'Intel':",
     ('tests/test_bf16.py::test_bf16_needs_a_bf16_path_faster_than_fp32',)),
    ('explicit-pad-off-by-one', "an explicitly padded convolution's zeros go on one side only",
     'alexnet_tf1/nn/ops.py',
     'x = tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]])',
     'x = tf.pad(x, [[0, 0], [2 * padding, 0], [padding, padding], [0, 0]])',
     ('tests/test_conv_forms.py::test_each_form_gives_tfs_kernels_answer_in_fp32',)),
    ('covering-conv-transposed', "a convolution covering its input reads its kernel's rows in "
     'the wrong order',
     'alexnet_tf1/nn/ops.py', "rows = tf.reshape(x, [-1, n_in])",
     "rows = tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [-1, n_in])",
     ('tests/test_conv_forms.py::test_each_form_gives_tfs_kernels_answer_in_fp32',)),
    ('bench-bf16-keras-in-fp32', "the bench's Keras twins stay fp32 under --precision bf16",
     'alexnet_tf1/bench/keras_twins.py', "self.dtype = policy ", "self.dtype = None ",
     ('tests/test_bench_bf16.py::test_the_keras_twin_under_mixed_bfloat16_computes_in_bf16_on_'
      'fp32_weights',)),
    ('neighbours-cache-ignores-precision', "run_eval --neighbours reuses fp32 vectors for a bf16 "
     'model',
     'alexnet_tf1/evaluation/neighbours.py', "            'precision': precision}",
     "            }",
     ('tests/test_neighbours.py::test_cache_is_reused_made_again_for_new_weights_or_data_and_'
      'orphans_go',)),
    ('full-disk-traceback', "a checkpoint that cannot be written (a full disk) ends the run "
     "with TF's traceback",
     'alexnet_tf1/training/checkpoints.py', 'except (tf.errors.OpError, OSError) as e:',
     'except KeyError as e:',
     ('tests/test_train.py::test_a_full_disk_is_one_line_and_the_run_resumes_from_what_was_'
      'saved',)),
    ('eval-json-unwritable-traceback', 'an eval.json that cannot be written ends run_eval with '
     'a traceback',
     'alexnet_tf1/evaluation/evaluate.py', '    except OSError as e:        # a full disk',
     '    except KeyError as e:        # a full disk',
     ('tests/test_eval.py::test_eval_json_that_cannot_be_written_is_one_line_after_the_figures',)),
    ('bf16-fc-bias-grad-in-bf16', "a bf16 fc's bias gradient is summed by TF's BiasAddGrad, "
     'which adds in bf16',
     'alexnet_tf1/nn/cpu_kernels.py',
     "return {'BiasAdd': 'BiasAddSummed'} if x.dtype.base_dtype == tf.bfloat16 else {}",
     'return {}',
     ('tests/test_bf16.py::test_a_bf16_bias_gradient_is_its_output_gradient_summed_then_rounded_'
      'once',)),
    ('bf16-unfused-conv-bias-grad-in-bf16', "a bf16 convolution oneDNN cannot fuse with its "
     "bias gradient (explicit padding, NCHW filter gradient) gets TF's BiasAddGrad, which adds "
     'in bf16',
     'alexnet_tf1/nn/ops.py', "elif 'b' in p and ('Conv2D' in override or not isinstance(padding, str)):",
     "elif False:",
     ('tests/test_bf16.py::test_a_bf16_bias_gradient_is_its_output_gradient_summed_then_rounded_'
      'once',)),
]
