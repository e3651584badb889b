"""tools/train.py, tools/test.py and tools/dist_train.sh run end to end on
the bundled real data (CIFAR-10 subset, one Cityscapes frame), as a user
runs them: subprocesses, the project's configs, ``--cfg-options`` to shrink
the runs."""
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

import mmlocal  # noqa: F401

# subprocesses of the tools, as a user runs them: each takes 15 s or more on a
# busy 2-core machine (mmlocal.apis has the in-process tests)
pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
CIFAR_CONFIG = osp.join(ROOT, 'configs', 'resnet32_cifar10_e2e.py')
CIFAR_MINI = osp.join(ROOT, 'data', 'cifar10_mini')
SEG_CONFIG = osp.join(ROOT, 'configs', 'deeplabv3_r101_cityscapes_e2e.py')
CITYSCAPES = osp.join(ROOT, 'tests', 'data', 'cityscapes')


def cifar_options(n_train: int = 16, batch: int = 8) -> list:
    """A few real images, a CIFAR ResNet-20, single-process data loading."""
    opts = ['model.backbone.depth=20', 'default_hooks.checkpoint.interval=1',
            'default_hooks.logger.interval=1']
    for split, n in (('train', n_train), ('val', 8), ('test', 8)):
        opts += [f'{split}_dataloader.dataset.data_root={CIFAR_MINI}',
                 f'{split}_dataloader.dataset.indices={n}',
                 f'{split}_dataloader.batch_size={batch}',
                 f'{split}_dataloader.num_workers=0']
    return opts


def run(cmd: list, timeout: int = 240, env: dict = None,
        check: bool = True) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    out = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True,
                         text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, (out.stdout[-3000:] + out.stderr[-5000:])
    return out


def tool(name: str, *args, **kwargs) -> subprocess.CompletedProcess:
    return run([sys.executable, osp.join(TOOLS, name), *args], **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def cifar_work_dir(tmp_path_factory):
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    work_dir = str(tmp_path_factory.mktemp('cifar_train'))
    tool('train.py', CIFAR_CONFIG, '--work-dir', work_dir, '--cfg-options',
         *cifar_options(), 'train_cfg.max_epochs=1')
    return work_dir


def test_train_then_auto_resume(cifar_work_dir):
    assert osp.isfile(osp.join(cifar_work_dir, 'epoch_1.pth'))
    out = tool('train.py', CIFAR_CONFIG, '--work-dir', cifar_work_dir,
               '--resume', '--cfg-options', *cifar_options(),
               'train_cfg.max_epochs=2')
    assert 'Auto resumed from the latest checkpoint' in out.stdout + out.stderr
    assert 'resumed epoch: 1' in out.stdout + out.stderr
    assert osp.isfile(osp.join(cifar_work_dir, 'epoch_2.pth'))


def test_test_tool_dumps_and_ignores_local_heads(cifar_work_dir, tmp_path):
    """--out pickles the predictions; a locally trained checkpoint loads into
    the plain model without warnings, whether its heads are ``local_learner.*``
    keys of the state dict (older layout) or entries beside it."""
    checkpoint = torch.load(osp.join(cifar_work_dir, 'epoch_1.pth'))
    checkpoint['state_dict']['local_learner.heads.0.fc.weight'] = torch.ones(10, 16)
    checkpoint['state_dict']['local_learner.heads.0.fc.bias'] = torch.ones(10)
    checkpoint['local_learner'] = {'heads.1.fc.weight': torch.ones(10, 16)}
    checkpoint['optimizer']['local_learner'] = {'step': 1}
    ckpt = str(tmp_path / 'local.pth')
    torch.save(checkpoint, ckpt)
    out_file = str(tmp_path / 'preds.pkl')

    out = tool('test.py', CIFAR_CONFIG, ckpt, '--work-dir', str(tmp_path),
               '--out', out_file, '--cfg-options', *cifar_options())
    log = out.stdout + out.stderr
    assert 'Ignored 2 local-learning keys' in log
    assert 'unexpected key' not in log
    assert 'accuracy/top1' in log
    with open(out_file, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8 and 'pred_label' in preds[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_amp_without_cuda_fails_clearly(tmp_path):
    out = tool('train.py', CIFAR_CONFIG, '--amp', '--work-dir', str(tmp_path),
               check=False)
    assert out.returncode != 0
    assert 'CUDA' in out.stderr


def test_auto_scale_lr_needs_its_base(tmp_path):
    out = tool('train.py', CIFAR_CONFIG, '--auto-scale-lr', '--work-dir', str(tmp_path),
               '--cfg-options', 'auto_scale_lr=None', check=False)
    assert out.returncode == 2
    assert 'auto_scale_lr = dict(base_batch_size=N)' in out.stderr


def test_segmentation_tta(tmp_path):
    """``tools/test.py --tta`` on the real Cityscapes frame: SegTTAModel over
    6 scales x 2 flips; ``--out`` writes prediction maps, ``--show-dir``
    painted images. The scale factors are those of the config (0.5-1.75)
    times 1/4 and the backbone a ResNet-50 to keep the test fast."""
    if not osp.isfile(SEG_CONFIG):
        pytest.skip(f'{SEG_CONFIG} missing')
    ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    opts = ['model.pretrained=None', 'model.backbone.depth=50',
            'default_hooks.visualization.interval=1',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False']
    # --show-dir: mmseg's hook asks runner.iter, which builds the train loop
    for split in ('train', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={CITYSCAPES}')
    opts += [f'tta_pipeline.1.transforms.0.{i}.scale_factor={r / 4}'
             for i, r in enumerate(ratios)]

    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(SEG_CONFIG)
    cfg.model.pretrained = None
    cfg.model.backbone.depth = 50
    assert [t['scale_factor'] for t in cfg.tta_pipeline[1].transforms[0]] == ratios
    init_default_scope('mmseg')
    torch.manual_seed(0)
    state_dict = MODELS.build(cfg.model).state_dict()
    state_dict['local_learner.heads.0.conv.weight'] = torch.zeros(4, 8, 3, 3)
    ckpt = str(tmp_path / 'deeplabv3.pth')
    torch.save(dict(meta=dict(), state_dict=state_dict), ckpt)
    del state_dict

    out_dir, show_dir = str(tmp_path / 'pred'), str(tmp_path / 'show')
    out = tool('test.py', SEG_CONFIG, ckpt, '--tta', '--work-dir',
               str(tmp_path / 'work'), '--out', out_dir, '--show-dir',
               show_dir, '--cfg-options', *opts)
    log = out.stdout + out.stderr
    assert "type='SegTTAModel'" in log
    assert 'mIoU' in log
    assert 'unexpected key' not in log
    assert os.listdir(out_dir) == ['frankfurt_000000_000294_leftImg8bit.png']
    assert os.listdir(osp.join(show_dir, 'vis_data', 'vis_image'))


@pytest.mark.dist
def test_dist_train_cpu_and_resume(tmp_path):
    """``tools/dist_train.sh CONFIG 2`` on CPU: two gloo processes, DDP
    without device ids, then an automatic resume."""
    if not osp.isdir(osp.join(CIFAR_MINI, 'train')):
        pytest.skip(f'bundled CIFAR-10 subset missing under {CIFAR_MINI}')
    work_dir = str(tmp_path)
    opts = cifar_options(n_train=16, batch=4)  # 2 iterations per epoch

    def dist_train(*args):
        env = dict(PYTHON=sys.executable, PORT=str(free_port()),
                   OMP_NUM_THREADS='1')
        return run(['bash', osp.join(TOOLS, 'dist_train.sh'), CIFAR_CONFIG,
                    '2', '--work-dir', work_dir, *args], env=env)

    out = dist_train('--cfg-options', *opts, 'train_cfg.max_epochs=1')
    log = out.stdout + out.stderr
    assert 'Distributed training: True' in log
    assert "backend='gloo'" in log
    assert 'Epoch(train) [1][2/2]' in log  # 16 images / 2 ranks / batch 4
    out = dist_train('--resume', '--cfg-options', *opts,
                     'train_cfg.max_epochs=2')
    assert 'Epoch(train) [2][2/2]' in out.stdout + out.stderr
    assert osp.isfile(osp.join(work_dir, 'epoch_2.pth'))
