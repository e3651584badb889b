# Mask R-CNN R50-FPN on Cityscapes instances, end-to-end backprop: mmdet's own
# config (mmdet model zoo, cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py: 8
# classes, 8 GPUs x 1 image, SGD 0.01, 8 epochs of the train set repeated 8
# times, initialised from mmdet's COCO Mask R-CNN), unchanged, so the local
# delta (mask-rcnn_r50_fpn_cityscapes_dgl_k4.py) is compared like for like.
# InfoPro's journal version evaluates Mask R-CNN (on COCO) with MMDetection.
#
# Data: mmdet's Cityscapes instance layout under data/cityscapes (COCO-style
# JSON made by mmdet's tools/dataset_converters/cityscapes.py); another root:
#   --cfg-options train_dataloader.dataset.dataset.data_root=PATH
#   val_dataloader.dataset.data_root=PATH test_dataloader.dataset.data_root=PATH
#   (and the evaluators' ann_file / seg_prefix)
# Offline: --cfg-options load_from=None (no COCO initialisation; random init).
_base_ = 'mmdet::cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py'
custom_imports = dict(imports=['mmlocal'], allow_failed_imports=False)

train_dataloader = dict(worker_init_fn=dict(type='seed_worker'))
# exact resume and new augmentations every epoch (mmlocal RandomStateHook)
custom_hooks = [dict(type='RandomStateHook')]
