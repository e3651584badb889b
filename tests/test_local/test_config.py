"""``optim_wrapper.local`` schema: every class of mistake is refused at build
time with a message that names the key or value and the fix."""
import pytest

from mmlocal.local import LocalConfig, LocalConfigError
from mmlocal.local.config import HiLoConfig, MLAANConfig, PFFConfig

DGL = dict(type='DGL')

# (config, pattern the message must match): each row a different class of mistake
BAD = [
    # 1. unknown top-level key, closest suggested
    (dict(num_module=4), r"no key 'num_module'\. Did you mean 'num_modules'\?"),
    # 2. unknown hilo key (silently trained with window 2 before)
    (dict(num_modules=4, hilo=dict(casade=3)), r"hilo has no key 'casade'.*'cascade'"),
    # 3. unknown pff key (silently trained without PFF before)
    (dict(num_modules=4, pff=dict(patchs=2)), r"pff has no key 'patchs'.*'patches'"),
    # 4. unknown mlaan key (silently used the default momentum before)
    (dict(num_modules=4, hilo=dict(cascade=3), mlaan=dict(momentun=0.9)),
     r"mlaan has no key 'momentun'.*'momentum'"),
    # 5. patches < 1
    (dict(num_modules=4, pff=dict(patches=0)), r'pff\.patches must be >= 1, got 0'),
    # 6. a pair that is not a pair (failed with 'not enough values to unpack' before)
    (dict(num_modules=4, method=dict(type='InfoPro', recon_weights=(1,))),
     r'method\.recon_weights must be a pair \(start, end\)'),
    # 7. unknown method type
    (dict(num_modules=4, method=dict(type='DLG')), r"'DLG' is not a local method\. Did you mean 'DGL'"),
    # 8. unknown method argument
    (dict(num_modules=4, method=dict(type='InfoPro', recon_weight=(5, 0))),
     r"method \(InfoPro\) has no key 'recon_weight'.*'recon_weights'"),
    # 9. momentum out of [0, 1)
    (dict(num_modules=4, hilo=dict(cascade=3), mlaan=dict(momentum=1.0)),
     r'mlaan\.momentum must be < 1'),
    # 10. negative weight
    (dict(num_modules=4, hilo=dict(independent_weight=-0.1)),
     r'hilo\.independent_weight must be >= 0'),
    # 11. all weights zero
    (dict(num_modules=4, hilo=dict(independent_weight=0, cascade_weight=0)),
     r'both 0, no module would learn'),
    # 12. unknown enum string
    (dict(num_modules=4, hilo=dict(cascade=3), mlaan=dict(ema='first')),
     r"mlaan\.ema must be one of \['all', 'last'\], got 'first'"),
    # 13. enum inside a tuple
    (dict(num_modules=4, pff=dict(apply_to=('both',))), r"pff\.apply_to must be one of"),
    # 14. wrong value type
    (dict(num_modules=4, hilo=dict(cascade='3')), r'hilo\.cascade must be an integer'),
    # 15. K < 1
    (dict(num_modules=0), r'num_modules must be >= 1'),
    # 16. both K and boundaries
    (dict(num_modules=2, boundaries=['backbone.layer2.0']), r'num_modules or boundaries, not both'),
    # 17. boundaries given as one string
    (dict(boundaries='backbone.layer2.0'), r'boundaries must be a list of block paths'),
    # 18. unknown task loss
    (dict(num_modules=4, method=dict(type='InfoPro', task_loss='hinge')),
     r"task_loss must be one of \['contrast', 'softmax'\], got 'hinge'"),
    # 19. a sub-dict that is not a dict
    (dict(num_modules=4, hilo=3), r'hilo must be a dict, got 3'),
    # 20. MLAAN on cascade heads without windows
    (dict(num_modules=4, mlaan=dict()), r"needs cascade windows: add hilo=dict\(cascade=3\)"),
    # 21. an unknown head type inside a method
    (dict(num_modules=4, method=dict(type='DGL', classifier=dict(type='NoSuchHead'))),
     r"classifier: unknown model type 'NoSuchHead'"),
    # 22. probe size that is not (H, W)
    (dict(num_modules=4, probe_size=32), r'probe_size must be \(H, W\)'),
    # 23. PredSim beta out of range
    (dict(num_modules=4, method=dict(type='PredSim', beta=1.5)), r'method\.beta must be <= 1'),
    # 24. the old AMP flag inside local
    (dict(num_modules=4, amp=True), r"no key 'amp'"),
    # 25. unknown schedule position
    (dict(num_modules=4, schedule='stages'), r"schedule must be one of \['index', 'stage'\].*'stage'"),
    # 26. unknown BN update count
    (dict(num_modules=4, bn_updates='twice'), r"bn_updates must be one of \['once', 'per-path'\]"),
    # 27. unknown EMA branch mode
    (dict(num_modules=4, hilo=dict(cascade=3), mlaan=dict(ema_branch='train')),
     r"mlaan\.ema_branch must be one of \['frozen', 'trained'\], got 'train'.*'trained'"),
]


@pytest.mark.parametrize('cfg,pattern', BAD, ids=[str(i + 1) for i in range(len(BAD))])
def test_bad_config_is_refused(cfg, pattern):
    with pytest.raises(LocalConfigError, match=pattern):
        LocalConfig.parse(cfg)


def test_decoder_variant_without_a_decoder_is_refused_by_the_schema():
    """'quadrant' and 'output' patch InfoPro's decoder: a config whose patched
    heads have none would train without PFF; the schema refuses it."""
    with pytest.raises(LocalConfigError, match=r"pff\.variant='quadrant' patches the "
                                               r'reconstruction decoder, but no head.*InfoPro'):
        LocalConfig.parse(dict(num_modules=4, pff=dict(variant='quadrant')))
    with pytest.raises(LocalConfigError, match=r"variant='output'.*apply_to=\('independent',\)"):
        LocalConfig.parse(dict(num_modules=4, method=dict(type='InfoPro'), hilo=dict(
            independent_method=DGL), pff=dict(variant='output', apply_to=('independent',))))
    # the cascade heads run InfoPro: accepted
    LocalConfig.parse(dict(num_modules=4, method=dict(type='InfoPro'), hilo=dict(
        independent_method=DGL), pff=dict(variant='output')))


def test_messages_list_the_valid_keys():
    with pytest.raises(LocalConfigError) as err:
        LocalConfig.parse(dict(num_modules=4, pff=dict(n=2)))
    assert 'Valid keys: apply_to, mode, patches, variant.' in str(err.value)


def test_good_config_is_typed_and_normalised():
    cfg = LocalConfig.parse(dict(
        num_modules=16, method=dict(type='InfoPro', recon_weights=[5, 0.5]),
        hilo=dict(cascade=3), pff=dict(patches=2, apply_to=['cascade']),
        mlaan=dict(momentum=0.99, ema='last')))
    assert cfg.num_modules == 16
    assert cfg.method['recon_weights'] == (5.0, 0.5)
    assert cfg.hilo == HiLoConfig(cascade=3)
    assert cfg.pff == PFFConfig(patches=2, apply_to=('cascade',))
    assert cfg.mlaan == MLAANConfig(momentum=0.99, ema='last')
    assert LocalConfig.parse(cfg) is cfg
    assert LocalConfig.parse(dict(num_modules=2)).hilo is None


def test_model_dependent_checks(classifier):
    """Checks that need the split: the window against K, patches against the
    feature map, K against the blocks."""
    from mmlocal.testing import build_local
    with pytest.raises(LocalConfigError, match=r'hilo\.cascade=9 spans more modules than the 4 '
                                               r'local modules.*between 1 and 4'):
        build_local(classifier, dict(num_modules=4, method=DGL, hilo=dict(cascade=9)))
    with pytest.raises(ValueError, match='PFF patch grid 9x9 is larger than the 8x8'):
        build_local(classifier, dict(num_modules=8, method=DGL, pff=dict(patches=9),
                                     probe_size=(32, 32)))
    with pytest.raises(ValueError, match='K must be between 1 and 10'):
        build_local(classifier, dict(num_modules=11, method=DGL))


def test_unsupervised_module_is_refused(classifier):
    """A schedule that zeroes a module's only loss stops the build and names
    the module (issue 13: InfoPro ending at (0, 0) left m15 untrained)."""
    from mmlocal.testing import build_local
    with pytest.raises(LocalConfigError, match=r'local module m3 \(backbone\.\S+\) would get no '
                                               r'gradient: local\.m3 weight 1 x loss weights'):
        build_local(classifier, dict(num_modules=4, method=dict(
            type='InfoPro', recon_weights=(5., 0.), task_weights=(0.5, 0.))))
