"""tools/analysis/split_peaks.py on a CIFAR config: the per-module peaks of
the config's split, equal blocks and the peak-balanced split."""
import os.path as osp

from checkout import ROOT, load_tool


def test_split_peaks_cli(capsys):
    tool = load_tool(osp.join('tools', 'analysis', 'split_peaks.py'))
    config = osp.join(ROOT, 'configs', 'resnet32_cifar10_dgl_k16.py')
    result = tool.main([config, '--batch-size', '4', '--num-modules', '4', '--threads', '1'])
    out = capsys.readouterr().out
    assert '| split | boundaries | predicted module peaks (MB) |' in out
    splits = result['splits']
    assert set(splits) == {'config', 'blocks', 'peak-balanced'}
    for row in splits.values():
        assert len(row['boundaries']) == 3 and len(row['peaks_mb']) == 4
        assert row['predicted_peak_mb'] > max(row['peaks_mb']) > 0
    # K=4 of the papers' ResNet-32 table (the config's split='auto')
    assert splits['config']['boundaries'] == ['backbone.layer1.2', 'backbone.layer2.1',
                                              'backbone.layer3.0']
    assert max(splits['peak-balanced']['peaks_mb']) <= max(splits['blocks']['peaks_mb'])
    assert len(result['costs']['graph']) == 16  # stem + 15 blocks
