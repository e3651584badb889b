"""ResNet-32 CIFAR-10, InfoPro + MLAAN, K=16 (MLAAN Table I row "InfoPro*",
R32 K=16: 6.37 % test error).

Reproduces MLAAN's k=3 InfoPro code, ``CIFAR-SVHN-STL/networks/resnetInfoProbin.py``
(github.com/Wendy231015/MLAAN @ 70effbe; ALGORITHMS.md §6.2-6.3), run with
the README's arguments (``local_module_num`` 15 = S segments, the papers'
K=16; cross-entropy, 1c2f, feature dim 128, ixx 5 -> 0, ixy 0.5 -> 0,
``--momentum 0.995``), ``stem='merged'`` (§1.1: the stem is in no segment):

* segments 0 and 1 (m2, m3) run without a head (lines 305-313); from segment
  2 on (m4..m15), an independent head on E_i's output (weight wx = 0.001;
  ``x_decoder`` + ``x_classifier``, built at lines 153-160 with
  ``AuxClassifier``'s *default* arguments: 1c2f and SupCon contrast, feature
  dim 128) and a cascade head over (E_{i-2}, E_{i-1}, E_i) (weight
  wy = 0.999; ``y_decoder`` + ``y_classifier`` on 64 channels, 1c2f, CE),
  the cascade of segment 2 reaching through the stem (lines 316-341);
* lambda per segment (lines 329-332): ratio = stage / (local_module_num - 2)
  with the *stage* index of the segment's block (``infopro_config[i][0]``,
  1..3) and local_module_num = 15, for both heads of a segment:
  ``schedule='stage'`` gives lambda1/lambda2 = 4.62/0.46 (layer1, m4-m6),
  4.23/0.42 (layer2, m7-m11), 3.85/0.38 (layer3, m12-m15);
* leap copies of §6.5's R32 S=15 table (``configAuxPlus_new.py``) in front
  of each cascade head (lines 323-327);
* the EMA copies are never frozen (lines 185 and 245; ``resnetDGLbin.py``
  freezes them), so ``train.py``'s SGD over ``model.parameters()`` trains
  them: ``ema_branch='trained'``; the EMA update itself runs only for the
  last module's copy (``EMA_Net[-1]``, after the backward, before the
  optimizer step; lines 361-363): ``ema='last'``, r = 0.995;
* the task loss: CE(fc64(y)) of the cascade path only, y = E_14(E_13(E_12(y)))
  (lines 346-359; the x-path loss is computed and overwritten), so its
  gradient reaches m14 and m13 with weight 1;
* BN running statistics as often as that loop runs each block (x path plus
  every window: 2, 3, 4, ..., 4, 3, 2 times; the stem once):
  ``bn_updates='per-path'``.

``tests/data/golden/infopro_mlaan.pt`` pins one training step to the authors'
own code (every loss, gradient and update; ``test_configs/test_golden.py``),
``tests/test_local/test_plan.py`` the plan to the loop written out from the
code, ``tests/test_configs/test_infopro_mlaan.py`` the lambda table and the
EMA branch. The paper's frozen EMA branch:
``--cfg-options optim_wrapper.local.mlaan.ema_branch=frozen``; HPFF's segment
indexing of lambda (r = i / 14): ``optim_wrapper.local.schedule=index``.
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/infopro_cifar.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=16, schedule='stage')
optim_wrapper.local.hilo.update(
    cascade=3,
    independent_method=dict(type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.),
                            task_loss='contrast'))
optim_wrapper.local.mlaan.ema_branch = 'trained'
