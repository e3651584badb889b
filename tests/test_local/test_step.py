"""A local-learning step waits for the device no more often than E2E's.

Host syncs (``aten._local_scalar_dense``: ``.item()``, ``float(t)``,
``bool(t)``, ``if t:``) are counted with a ``TorchDispatchMode`` inside one
``train_step`` of every method's config, run as under the Runner (local
losses read by ``LocalLossHook`` after the step), and compared with E2E's on
the same model and batch. Losses that are read after the step are still read
and checked (``test_errors.py``, ``test_engine/test_local_loss_hook.py``).
"""
import os.path as osp

import pytest
import torch

from mmlocal import apis

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
R32 = 'resnet32_cifar10_{}.py'
DLV3 = 'deeplabv3_r101_cityscapes_{}.py'
#: method -> config (ResNet-32 K=16: every method of the papers' CIFAR tables),
#: run on 2 images of 16x16 (host syncs do not depend on the sizes)
METHODS = {
    'DGL': R32.format('dgl_k16'),
    'PredSim': R32.format('predsim_k16'),
    'InfoPro': R32.format('infopro_k16'),
    'InfoPro-contrast': R32.format('infopro-contrast_k16'),
    'DGL+HiLo': R32.format('dgl_hilo_k16'),
    'DGL+HPFF': R32.format('dgl_hpff_k16'),
    'InfoPro+HPFF (quadrant PFF)': R32.format('infopro_hpff_k16'),
    'InfoPro+HPFF (paper PFF)': R32.format('infopro_hpff_k16_pff-paper'),
    'DGL+MLAAN': R32.format('dgl_mlaan_k16'),
    'InfoPro+MLAAN': R32.format('infopro_mlaan_k16'),
}
#: DeepLabV3 on a ResNet-18 and 64x128 crops: the heads and routing of the
#: R101 configs at a cost CI affords
SMALL_DLV3 = {'model.backbone.depth': 18, 'model.decode_head.in_channels': 512,
              'model.decode_head.channels': 64, 'model.auxiliary_head.in_channels': 256,
              'model.auxiliary_head.channels': 32}
SEG = {'InfoPro (segmentation)': DLV3.format('infopro_k4'),
       'InfoPro+HPFF (segmentation)': DLV3.format('infopro_hpff')}


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny ops: OpenMP threads only spin against each other (on a loaded
    2-core machine a step took 17 s with 2 threads, 0.3 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _syncs_in(fn) -> int:
    with apis.OpCounter() as counter:
        fn()
    return counter.syncs


def _count(path: str, options=None, batch_size: int = 2, input_size=(16, 16)):
    cfg = apis.load_config(osp.join(ROOT, 'configs', path), options)
    if cfg.model.get('pretrained') is not None:
        cfg.model.pretrained = None
    apis.fit_preprocessor_size(cfg, input_size)
    batch = apis.synthetic_batch(cfg, batch_size, input_size, seed=0)
    torch.manual_seed(0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg)
    apis.runner_mode(wrapper)
    apis.run_iteration(model, wrapper, batch)  # first step: optimizer state, MLAAN sync
    return apis.count_step(model, wrapper, batch, where=True)


@pytest.fixture(scope='module')
def e2e_r32():
    return _count(R32.format('e2e'))


@pytest.mark.parametrize('method', list(METHODS))
def test_no_host_sync_beyond_e2e(method, e2e_r32):
    local = _count(METHODS[method])
    assert local.syncs == e2e_r32.syncs, (
        f'{method}: {local.syncs} host syncs per step, E2E {e2e_r32.syncs}; '
        f'from {local.sync_sites}')


@pytest.mark.parametrize('method', list(SEG))
def test_no_host_sync_beyond_e2e_segmentation(method):
    e2e = _count(DLV3.format('e2e'), SMALL_DLV3, 2, (64, 128))
    options = dict(SMALL_DLV3, **{'optim_wrapper.local.split': 'blocks',
                                  'optim_wrapper.local.boundaries': None,
                                  'optim_wrapper.local.num_modules': 4})
    local = _count(SEG[method], options, 2, (64, 128))
    assert local.syncs == e2e.syncs, local.sync_sites


def test_losses_are_read_after_the_step():
    """Under the Runner the step leaves its local losses unread: the hook
    reads them after the step, one value per head loss."""
    cfg = apis.load_config(osp.join(ROOT, 'configs', METHODS['InfoPro']))
    batch = apis.synthetic_batch(cfg, 2, (16, 16), seed=0)
    model, wrapper = apis.build_model_and_optim_wrapper(cfg)
    apis.runner_mode(wrapper)
    model.train_step(batch, wrapper)
    losses = wrapper.pop_local_losses()
    heads = wrapper.learner.plan.heads
    assert len(losses) == 2 * len(heads)  # loss_cls and loss_recon of every head
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in losses.values())
    assert wrapper.pop_local_losses() is None
