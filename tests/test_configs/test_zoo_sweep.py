"""The zoo sweep (issue 25): configs straight from the model zoos of mmpretrain,
mmseg and mmdet train locally with the ``local`` delta alone.

For each case of ``mmlocal.testing.zoo.ZOO_CASES`` (random init, a small batch
of the repository's real images): a K=1 local step equals E2E, every
trainable parameter gets a gradient, module 1's gradient does not change when
the last module (blocks, neck, task heads) changes, and one ``train_step``
with the config's own optimizer and ``clip_grad`` is finite and moves module 1.
``tools/analysis/zoo_sweep.py`` writes the same results to docs/zoo.md.
"""
import pytest

from mmlocal.testing.zoo import ZOO_CASES, check_case


def test_the_sweep_covers_the_three_toolboxes_and_the_issue_cases():
    configs = [c.config for c in ZOO_CASES]
    assert len(set(configs)) >= 20
    assert {c.toolbox for c in ZOO_CASES} == {'mmpretrain', 'mmseg', 'mmdet'}
    for name in ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'convnext-tiny',
                 'swin_transformer/swin-tiny', 'swin/swin-tiny-patch4-window7-in1k-pre_upernet',
                 'mobilenet-v2_8xb32_in1k', 'segformer_mit-b0'):
        assert any(name in c for c in configs), name
    # ConvNeXt, Swin, MiT and MobileNetV2 split with num_modules alone
    for name in ('convnext-tiny', 'swin-tiny_16xb64', 'swin-tiny-patch4', 'mit-b0',
                 'mobilenet-v2_8xb32'):
        case = next(c for c in ZOO_CASES if name in c.config)
        assert case.local == dict(num_modules=4), name


@pytest.mark.slow
@pytest.mark.parametrize('case', ZOO_CASES, ids=lambda c: c.config.split('/')[-1][:-3]
                         + ('' if 'num_modules' in c.local and len(c.local) == 1 else '-delta'))
def test_zoo_config_trains_locally(case):
    result = check_case(case)
    assert set(result.checks) == {'k1', 'grads', 'isolation', 'train_step'}, result.reason
    assert result.passed, result.reason
