"""ResNet-32 CIFAR-10, MLAAN, K=16 (MLAAN Table I row "MLAAN", R32 K=16:
6.51 % test error; Table III memory: BP 3.37 GB, MLAAN 2.62 GB).

Reproduces the model the MLAAN README's command trains: ``train.py``
(github.com/Wendy231015/MLAAN @ 70effbe, ``CIFAR-SVHN-STL/train.py`` lines
203-217) builds ``networks/resnetMLAAN.py`` whatever ``--model`` says, with
``local_module_num`` 15 (the R32 key of ``config2.py``; the README's 16 has no
entry), cross-entropy and ``--momentum 0.995``. ALGORITHMS.md §6.2-6.3 (the
k=2 file); ``stem='merged'`` (§1.1: the stem is in no segment):

* segment 0 (m2) runs without a head (lines 304-306); from segment 1 on
  (m3..m15) an independent head on E_i's output (weight wx = 0.001) and a
  cascade head over (E_{i-1}, E_i) (weight wy = 0.999), the cascade of
  segment 1 reaching through the stem (lines 307-323; wx, wy: the
  constructor's defaults, line 98);
* both heads are ``auxMLAAN.AuxClassifier`` (``networks/auxMLAAN.py`` lines
  5-19): global average pooling -> Linear(C, 10) with PyTorch's default
  init and bias, cross-entropy; here ``ConvAuxClassifier`` ``arch='0c1f'``,
  the same layers (its InfoPro init touches convolutions and BN only);
* leap copies of the R32 S=15 table of ``configAuxPlus_new.py`` (line 10;
  ALGORITHMS.md §6.5) in front of each cascade head, the cascade head on
  the last copy's 64 channels (lines 143-145, 313-317);
* EMA copies frozen (lines 182-184); only the last module's follows its
  live block, E <- 0.995 E + 0.005 live, after the backward and before the
  optimizer step (lines 342-344);
* the task loss: CE(fc64(y)) of the cascade path only, y = E_14(E_13(y))
  (lines 328-340; the x-path loss is overwritten), so its gradient reaches
  m15 with weight 1;
* BN running statistics as often as that loop runs each block (x path plus
  every window: 2, 3, ..., 3, 2 times; the stem once): ``bn_updates='per-path'``.

``tests/data/golden/mlaan.pt`` pins one training step to the authors' own
code (every loss, gradient and update; ``test_configs/test_golden.py``),
``tests/test_local/test_plan.py`` the plan to the loop written out from the
code. The k=3 variants: ``resnet32_cifar10_dgl_mlaan_k16.py``
(``resnetDGLbin.py``), ``resnet32_cifar10_infopro_mlaan_k16.py``
(``resnetInfoProbin.py``).
"""
_base_ = ['./resnet32_cifar10_e2e.py', './_base_/local/dgl.py', './_base_/local/mlaan.py']

optim_wrapper = _base_.pop('local_learning')
optim_wrapper.local.update(_base_.pop('local_hilo'), num_modules=16)
optim_wrapper.local.method.classifier = dict(type='ConvAuxClassifier', arch='0c1f')
optim_wrapper.local.mlaan.update(ema_branch='frozen', table='mlaan')
