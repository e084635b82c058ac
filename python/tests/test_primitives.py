"""The primitive APIs against the NumPy reference of batch-norm folding, cross-layer scaling and high-bias fold (tests/npref.py),
for every layer layout, and every bad input named in the spec."""

import numpy as np
import pytest

import aimetcle
from aimetcle import batch_norm_fold, cross_layer_equalization as cle, nn, utils
from aimetcle.errors import AimetError

import npref

RNG = np.random.default_rng(0)


def randomize(layer, spread=True):
    layer.weight = RNG.normal(size=layer.weight.shape).astype(np.float32)
    if spread:  # unequal per-channel ranges, as after a BN fold
        out_axis = 1 if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d)) and layer.groups == 1 else 0
        shape = [1] * layer.weight.ndim
        shape[out_axis] = -1
        layer.weight *= np.exp(RNG.normal(size=layer.weight.shape[out_axis]) * 1.5).astype(np.float32).reshape(shape)
    if layer.bias is not None:
        layer.bias = RNG.normal(size=layer.bias.shape).astype(np.float32)
    return layer


def random_bn(bn):
    n = bn.num_features
    bn.weight = RNG.uniform(0.5, 2, n).astype(np.float32)
    bn.bias = RNG.normal(size=n).astype(np.float32)
    bn.running_mean = RNG.normal(size=n).astype(np.float32)
    bn.running_var = RNG.uniform(0.1, 3, n).astype(np.float32)
    return bn


def bn_tuple(bn):
    return bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.eps


def spec(layer):
    transposed = isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d))
    return layer.weight.copy(), None if layer.bias is None else layer.bias.copy(), transposed, getattr(layer, "groups", 1)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6 * max(1.0, float(np.abs(b).max())))


# --- batch-norm fold -----------------------------------------------------------

AFTER_LAYERS = [
    lambda: nn.Conv2d(4, 6, 3, padding=1),
    lambda: nn.Conv2d(4, 6, 3, groups=2, bias=False),
    lambda: nn.Conv2d(6, 6, 3, groups=6),
    lambda: nn.Conv1d(3, 5, 3),
    lambda: nn.Linear(7, 5),
    lambda: nn.ConvTranspose2d(4, 6, 2, stride=2),
    lambda: nn.ConvTranspose2d(4, 4, 3, groups=4),
    lambda: nn.ConvTranspose1d(3, 5, 2, bias=False),
]


@pytest.mark.parametrize("make", AFTER_LAYERS)
def test_fold_bn_after_layer_matches_reference(make):
    layer = randomize(make())
    bn = random_bn((nn.BatchNorm1d if isinstance(layer, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d))
                    else nn.BatchNorm2d)(layer.weight.shape[1] * layer.groups if isinstance(
                        layer, (nn.ConvTranspose1d, nn.ConvTranspose2d)) else layer.weight.shape[0]))
    w, b, transposed, groups = spec(layer)
    expected_w, expected_b = npref.fold_after(w, b, bn_tuple(bn), transposed, groups)
    weight_array = layer.weight
    model = nn.Sequential(layer, bn)
    batch_norm_fold.fold_given_batch_norms(model, [(layer, bn)])
    assert layer.weight is weight_array, "updated in place"
    close(layer.weight, expected_w)
    close(layer.bias, expected_b)
    assert isinstance(model[1], nn.Identity)
    assert "1.running_mean" not in model.state_dict() and "0.bias" in model.state_dict()


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(4, 6, 3), lambda: nn.Conv1d(4, 3, 5), lambda: nn.Linear(4, 3)])
def test_fold_bn_before_layer_matches_reference(make):
    layer = randomize(make())
    bn = random_bn((nn.BatchNorm2d if isinstance(layer, nn.Conv2d) else nn.BatchNorm1d)(4))
    expected_w, expected_b = npref.fold_before(layer.weight.copy(), layer.bias.copy(), bn_tuple(bn))
    model = nn.Sequential(bn, layer)
    batch_norm_fold.fold_given_batch_norms(model, [(bn, layer)])
    close(layer.weight, expected_w)
    close(layer.bias, expected_b)
    assert isinstance(model[0], nn.Identity)


def test_fold_keeps_function():
    reference = pytest.importorskip("reference")
    conv, bn = randomize(nn.Conv2d(3, 8, 3, padding=1)), random_bn(nn.BatchNorm2d(8))
    model = nn.Sequential(conv, bn, nn.ReLU()).eval()
    x = RNG.normal(size=(2, 3, 9, 9)).astype(np.float32)
    with reference.numpy_forward():
        before = model(x)
        batch_norm_fold.fold_given_batch_norms(model, [(conv, bn)])
        after = model(x)
    close(after, before)


def test_non_contiguous_weight_is_updated_in_its_own_array():
    conv = randomize(nn.Conv2d(3, 4, 1))
    base = np.asfortranarray(conv.weight)
    conv.weight = base
    bn = random_bn(nn.BatchNorm2d(4))
    expected_w, _ = npref.fold_after(base.copy(), conv.bias.copy(), bn_tuple(bn))
    batch_norm_fold.fold_given_batch_norms(nn.Sequential(conv, bn), [(conv, bn)])
    assert conv.weight is base
    close(base, expected_w)


# --- cross-layer scaling -------------------------------------------------------

PAIRS = [
    lambda: (nn.Conv2d(3, 8, 3), nn.Conv2d(8, 5, 3)),
    lambda: (nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1)),
    lambda: (nn.Conv1d(3, 6, 3), nn.Conv1d(6, 2, 3, bias=False)),
    lambda: (nn.Conv2d(3, 6, 3), nn.ConvTranspose2d(6, 4, 2)),
    lambda: (nn.ConvTranspose2d(3, 6, 2), nn.Conv2d(6, 4, 3)),
    lambda: (nn.ConvTranspose1d(3, 6, 2, bias=False), nn.ConvTranspose1d(6, 2, 3)),
    lambda: (nn.Conv2d(3, 6, 3), nn.Conv2d(6, 4, 3, groups=2)),
]


@pytest.mark.parametrize("make", PAIRS)
def test_scale_pair_matches_reference(make):
    l1, l2 = (randomize(m) for m in make())
    w1, b1, w2, s = npref.cls_pair(spec(l1), spec(l2))
    scales = cle.CrossLayerScaling.scale_cls_sets([(l1, l2)])
    close(scales[0], s)
    close(l1.weight, w1)
    close(l2.weight, w2)
    if b1 is not None:
        close(l1.bias, b1)


def test_scale_triplet_matches_reference_and_instance_call():
    l1, dw, l3 = randomize(nn.Conv2d(4, 12, 1)), randomize(nn.Conv2d(12, 12, 3, groups=12)), randomize(nn.Conv2d(12, 5, 1))
    w1, b1, wdw, bdw, w3, s12, s23 = npref.cls_triplet(spec(l1), spec(dw), spec(l3))
    [(got12, got23)] = cle.CrossLayerScaling().scale_cls_sets([(l1, dw, l3)])  # AIMET 2.x style
    close(got12, s12)
    close(got23, s23)
    for actual, expected in ((l1.weight, w1), (l1.bias, b1), (dw.weight, wdw), (dw.bias, bdw), (l3.weight, w3)):
        close(actual, expected)


def test_scaling_keeps_function_through_relu():
    reference = pytest.importorskip("reference")
    l1, l2, l3 = randomize(nn.Conv2d(3, 8, 3)), randomize(nn.Conv2d(8, 8, 3, groups=8)), randomize(nn.Conv2d(8, 4, 1))
    model = nn.Sequential(l1, nn.ReLU(), l2, nn.ReLU(), l3).eval()
    x = RNG.normal(size=(2, 3, 10, 10)).astype(np.float32)
    with reference.numpy_forward():
        before = model(x)
        cle.CrossLayerScaling.scale_cls_sets([(l1, l2, l3)])
        after = model(x)
    close(after, before)


def test_dead_channel_gets_factor_one():
    l1, l2 = randomize(nn.Conv2d(2, 3, 1)), randomize(nn.Conv2d(3, 2, 1))
    l1.weight[1] = 0
    l2.weight[:, 2] = 0
    s = cle.CrossLayerScaling.scale_cls_sets([(l1, l2)])[0]
    assert s[1] == 1 and s[2] == 1 and np.isfinite(l1.weight).all() and np.isfinite(l2.weight).all()


# --- high-bias fold --------------------------------------------------------------

@pytest.mark.parametrize("relu", [True, False])
def test_high_bias_fold_matches_reference(relu):
    l1, l2 = randomize(nn.Conv2d(3, 6, 3)), randomize(nn.Conv2d(6, 4, 3))
    bn = random_bn(nn.BatchNorm2d(6))
    bn.bias *= 5  # high biases, so that some of them fold
    scale = RNG.uniform(0.3, 3, 6).astype(np.float32)
    expected_b1, expected_b2 = npref.high_bias_fold(l1.bias.copy(), l2.weight.copy(), l2.bias.copy(), False, 1,
                                                    bn.weight, bn.bias, scale, relu)
    info = cle.ClsSetInfo(cle.ClsSetInfo.ClsSetLayerPairInfo(l1, l2, scale, relu))
    cle.HighBiasFold.bias_fold([info], {l1: bn})
    close(l1.bias, expected_b1)
    close(l2.bias, expected_b2)


def test_high_bias_fold_depthwise_triplet():
    l1, dw, l3 = randomize(nn.Conv2d(4, 6, 1)), randomize(nn.Conv2d(6, 6, 3, groups=6)), randomize(nn.Conv2d(6, 3, 1))
    bn1, bn2 = random_bn(nn.BatchNorm2d(6)), random_bn(nn.BatchNorm2d(6))
    bn1.bias *= 5
    bn2.bias *= 5
    s12, s23 = cle.CrossLayerScaling.scale_cls_sets([(l1, dw, l3)])[0]
    b1, bdw = npref.high_bias_fold(l1.bias.copy(), dw.weight.copy(), dw.bias.copy(), False, 6, bn1.weight, bn1.bias, s12, True)
    bdw, b3 = npref.high_bias_fold(bdw, l3.weight.copy(), l3.bias.copy(), False, 1, bn2.weight, bn2.bias, s23, True)
    pair = cle.ClsSetInfo.ClsSetLayerPairInfo
    cle.HighBiasFold.bias_fold([cle.ClsSetInfo(pair(l1, dw, s12, True), pair(dw, l3, s23, True))], {l1: bn1, dw: bn2})
    close(l1.bias, b1)
    close(dw.bias, bdw)
    close(l3.bias, b3)


def test_high_bias_fold_skips_without_bn_or_bias(caplog):
    l1, l2 = randomize(nn.Conv2d(3, 6, 3)), randomize(nn.Conv2d(6, 4, 3, bias=False))
    b1 = l1.bias.copy()
    info = cle.ClsSetInfo(cle.ClsSetInfo.ClsSetLayerPairInfo(l1, l2, np.ones(6, np.float32), True))
    cle.HighBiasFold.bias_fold([info], {l1: random_bn(nn.BatchNorm2d(6))})  # l2 has no bias
    cle.HighBiasFold.bias_fold([info], {})  # no BN at all: says so, does nothing
    np.testing.assert_array_equal(l1.bias, b1)
    with caplog.at_level("INFO", logger="aimetcle.cross_layer_equalization"):
        cle.HighBiasFold.bias_fold([info], {})
    assert "nothing to fold" in caplog.text


# --- utils -------------------------------------------------------------------------

def test_replace_relu6_with_relu_recursively():
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU6(), nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU6()))
    utils.replace_modules_of_type1_with_type2(model, nn.ReLU6, nn.ReLU)
    kinds = [type(m) for m in model.modules()]
    assert nn.ReLU6 not in kinds and kinds.count(nn.ReLU) == 2


# --- bad input: a clear error and nothing changed ---------------------------------

def snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert set(after) == set(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def conv_bn_model():
    c1, b1, c2, b2 = (randomize(nn.Conv2d(3, 6, 3)), random_bn(nn.BatchNorm2d(6)),
                      randomize(nn.Conv2d(6, 4, 3, padding=1, bias=False)), random_bn(nn.BatchNorm2d(4)))
    return nn.Sequential(c1, b1, nn.ReLU(), c2, b2), (c1, b1, c2, b2)


@pytest.mark.parametrize("break_it, error, phrase", [
    (lambda m, l: setattr(l[2], "weight", l[2].weight.astype(np.float64)), TypeError, "dtype float64"),
    (lambda m, l: setattr(l[2], "weight", l[2].weight[:, :3].copy()), ValueError, "has shape (4, 3, 3, 3)"),
    (lambda m, l: l[2].weight.__setitem__((0, 0, 0, 0), np.nan), ValueError, "not finite"),
    (lambda m, l: l[3].running_var.__setitem__(1, np.inf), ValueError, "running_var is not finite"),
    (lambda m, l: (l[3].running_var.__setitem__(2, 0), setattr(l[3], "eps", 0.0)), ValueError, "sigma"),
    (lambda m, l: setattr(l[3], "running_mean", np.zeros(5, np.float32)), ValueError, "running_mean has shape (5,)"),
])
def test_fold_bad_input_changes_nothing(break_it, error, phrase):
    model, layers = conv_bn_model()
    break_it(model, layers)
    before = snapshot(model)
    with pytest.raises(error, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        batch_norm_fold.fold_given_batch_norms(model, [(layers[0], layers[1]), (layers[2], layers[3])])
    assert_unchanged(model, before)
    assert isinstance(model[1], nn.BatchNorm2d), "the first, valid pair was rolled back too"


def test_fold_refuses_pairs_that_do_not_fit():
    model, (c1, b1, c2, b2) = conv_bn_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match="pads its input"):
        batch_norm_fold.fold_given_batch_norms(model, [(b1, c2)])  # c2 pads: BN before it cannot fold
    with pytest.raises(ValueError, match="6 features but"):
        batch_norm_fold.fold_given_batch_norms(model, [(c2, b1)])
    with pytest.raises(TypeError, match=r"\(ReLU, Conv2d\)"):
        batch_norm_fold.fold_given_batch_norms(model, [(model[2], c2)])
    with pytest.raises(ValueError, match="not a submodule"):
        batch_norm_fold.fold_given_batch_norms(model, [(c1, nn.BatchNorm2d(6))])
    with pytest.raises(ValueError, match="more than one pair"):
        batch_norm_fold.fold_given_batch_norms(model, [(c1, b1), (c1, b1)])
    assert_unchanged(model, before)


def test_cls_bad_sets_change_nothing():
    model, (c1, b1, c2, b2) = conv_bn_model()
    other = randomize(nn.Conv2d(5, 2, 1))
    before = snapshot(model)
    cases = [
        ([(c1,)], AimetError, "got 1"),
        ([(c1, c2), (c2, other)], ValueError, "cannot form a CLS pair"),
        ([(c1, nn.Conv2d(6, 6, 3, groups=2), c2)], ValueError, "not depthwise"),
        ([(c1, nn.Linear(6, 2))], ValueError, "cannot be cross-layer scaled"),
        ([(c1, b1)], TypeError, "BatchNorm2d; expected Conv1d"),
        ([c1], TypeError, "a CLS set is a tuple"),
    ]
    for sets, error, phrase in cases:
        with pytest.raises(error, match=phrase):
            cle.CrossLayerScaling.scale_cls_sets(sets)
        assert_unchanged(model, before)


def test_error_carries_library_status_and_message():
    c1, c2 = randomize(nn.Conv2d(3, 6, 3)), randomize(nn.Conv2d(5, 2, 3))
    with pytest.raises(AimetError) as info:
        cle.CrossLayerScaling.scale_cls_sets([(c1, c2)])
    assert info.value.code == -3 and "cls_sets[0][0]" in info.value.message


def test_hbf_bad_scale_changes_nothing():
    l1, l2 = randomize(nn.Conv2d(3, 6, 3)), randomize(nn.Conv2d(6, 4, 3))
    b1, b2 = l1.bias.copy(), l2.bias.copy()
    pair = cle.ClsSetInfo.ClsSetLayerPairInfo
    bn = random_bn(nn.BatchNorm2d(6))
    bad = [cle.ClsSetInfo(pair(l1, l2, np.ones(6, np.float32), True)),
           cle.ClsSetInfo(pair(l1, l2, np.ones(5, np.float32), True))]
    with pytest.raises(ValueError, match="scale factor has 5 entries"):
        cle.HighBiasFold.bias_fold(bad, {l1: bn})
    np.testing.assert_array_equal(l1.bias, b1)
    np.testing.assert_array_equal(l2.bias, b2)


def test_package_surface():
    assert aimetcle.abi_version() == 2
    assert aimetcle.device("cpu") is not None
