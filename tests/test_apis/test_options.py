"""What the train/test options do to a config."""
import pytest
import torch
from mmengine.config import Config

from mmlocal import apis


def test_amp_is_mmengine_type_swap():
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD'))))
    apis.enable_amp(cfg)
    assert cfg.optim_wrapper == dict(type='AmpOptimWrapper', loss_scale='dynamic',
                                     optimizer=dict(type='SGD'))
    local = dict(constructor='LocalLearningOptimWrapperConstructor', loss_scale=512.,
                 local=dict(num_modules=4))
    cfg = Config(dict(optim_wrapper=local))
    apis.enable_amp(cfg)
    assert cfg.optim_wrapper == dict(local, type='AmpOptimWrapper')  # scale kept


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_refused_without_accelerator():
    with pytest.raises(RuntimeError, match='--amp needs a CUDA GPU'):
        apis.check_amp_available()


def test_auto_scale_lr():
    cfg = Config(dict(auto_scale_lr=dict(base_batch_size=1024)))
    apis.enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr == dict(base_batch_size=1024, enable=True)
    for cfg in (Config(), Config(dict(auto_scale_lr=dict(enable=False)))):
        with pytest.raises(RuntimeError, match='base_batch_size=N'):
            apis.enable_auto_scale_lr(cfg)
