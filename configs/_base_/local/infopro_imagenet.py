"""InfoPro K=4 as HPFF's ImageNet code runs it (ALGORITHMS.md §1.3, §5.4;
``Exp on Imagenet/networks/resnetInfoPro_HPFF.py``): the 'hpff-imagenet'
split (module 1 = stem .. layer3[0], then layer3[1..9], layer3[10..17],
layer3[18..] + layer4), the hard-coded 5 BCE + 0.75 CE, psi for 1024
channels (1x1 -> 256, 3x3 s2 -> 256, 3x3 s2 -> 512, 1x1 -> 2048, GAP, FC)
and a decoder with three x2 upsamplings (128, 64, 32, 16 channels)."""
_base_ = './infopro.py'

local_learning = dict(
    local=dict(
        num_modules=4,
        split='hpff-imagenet',
        method=dict(
            type='InfoPro',
            recon_weights=(5., 5.),
            task_weights=(0.75, 0.75),
            classifier=dict(type='ImageNetAuxClassifier', widths=(256, 256, 512, 2048)),
            decoder=dict(type='UpsampleDecoder', widths=(128, 64, 32, 16)))))
