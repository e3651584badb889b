# Faster R-CNN R50-FPN 1x on COCO, end-to-end backprop: mmdet's own config,
# unchanged, so every local-learning delta (faster-rcnn_r50_fpn_coco_<method>
# *.py) is compared like for like. mmdet model zoo: 37.4 box AP (8 GPUs x 2
# images, SGD 0.02, 12 epochs, 1333x800, ImageNet-pretrained torchvision
# ResNet-50 downloaded on first use; stem and layer1 frozen). InfoPro's
# journal version evaluates this detector with MMDetection.
#
# Added: mmdet's detection TTA (multi-scale + flip, DetTTAModel, as mmdet's
# RetinaNet config ships it) so `tools/test.py --tta` works.
# Data: the COCO layout under data/coco; another root:
#   --cfg-options train_dataloader.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
#   val_evaluator.ann_file=PATH/annotations/instances_val2017.json
#   test_evaluator.ann_file=PATH/annotations/instances_val2017.json
# Offline: --cfg-options model.backbone.init_cfg=None (random init).
_base_ = [
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mmdet::retinanet/retinanet_tta.py',
]
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

data_root = 'data/coco/'
train_dataloader = dict(dataset=dict(data_root=data_root), worker_init_fn=dict(type='seed_worker'))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
custom_hooks = [dict(type='RandomStateHook')]
