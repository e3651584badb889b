# RetinaNet R50-FPN 1x on COCO, end-to-end backprop: mmdet's own config,
# unchanged (its TTA included), so the local-learning deltas
# (retinanet_r50_fpn_coco_<method>*.py) are compared like for like. mmdet
# model zoo: 36.5 box AP (8 GPUs x 2 images, SGD 0.01, 12 epochs, 1333x800,
# ImageNet-pretrained torchvision ResNet-50 downloaded on first use). MAN++
# trains this detector with K=4 in its own code.
#
# Data: the COCO layout under data/coco; another root:
#   --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
#   val_evaluator.ann_file=PATH/annotations/instances_val2017.json
#   test_evaluator.ann_file=PATH/annotations/instances_val2017.json
# Offline: --cfg-options model.backbone.init_cfg=None (random init).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

data_root = 'data/coco/'
train_dataloader = dict(dataset=dict(data_root=data_root), worker_init_fn=dict(type='seed_worker'))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
custom_hooks = [dict(type='RandomStateHook')]
