"""aimetcle.nn behaves like torch.nn, and tests/reference.py computes like torch.

The reference forward is the oracle for every model-level test, so its
convolutions are checked here against direct loop implementations written
from the definitions (different code paths: explicit index arithmetic, no
np.pad, no sliding windows).
"""
import copy
import itertools
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import reference
from aimetcle import nn

F = nn.functional


# ----------------------------------------------------------------------------
# Constructors
# ----------------------------------------------------------------------------

def test_conv2d_defaults_and_layout():
    c = nn.Conv2d(3, 16, 3)
    assert (c.in_channels, c.out_channels, c.groups, c.padding_mode) == (3, 16, 1, "zeros")
    assert (c.kernel_size, c.stride, c.padding, c.dilation) == ((3, 3), (1, 1), (0, 0), (1, 1))
    assert c.transposed is False and c.output_padding == (0, 0)
    assert c.weight.shape == (16, 3, 3, 3) and c.bias.shape == (16,)
    for a in (c.weight, c.bias):
        assert a.dtype == np.float32 and a.flags.c_contiguous
    assert c.training is True


def test_conv_signatures_match_torch_order():
    c = nn.Conv2d(4, 8, (3, 5), 2, (1, 2), 1, 2, False, "reflect")
    assert (c.stride, c.padding, c.groups, c.bias, c.padding_mode) == ((2, 2), (1, 2), 2, None, "reflect")
    assert c.weight.shape == (8, 2, 3, 5)
    t = nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, False, 1)
    assert (t.stride, t.padding, t.output_padding, t.groups, t.dilation) == ((2, 2), (1, 1), (1, 1), 2, (1, 1))
    assert t.weight.shape == (4, 3, 3, 3) and t.bias is None and t.transposed is True
    c1 = nn.Conv1d(2, 4, 5, padding="same", dilation=2)
    assert (c1.kernel_size, c1.padding, c1.dilation) == ((5,), "same", (2,)) and c1.weight.shape == (4, 2, 5)
    t1 = nn.ConvTranspose1d(6, 4, 3, groups=2)
    assert t1.weight.shape == (6, 2, 3) and t1.kernel_size == (3,)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Conv2d(3, 16, 3, groups=2), "in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), "out_channels must be divisible by groups"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), "in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), "groups"),
    (lambda: nn.Conv2d(4, 4, 3, padding="full"), "Invalid padding string"),
    (lambda: nn.Conv2d(4, 4, 3, stride=2, padding="same"), "strided"),
    (lambda: nn.Conv2d(4, 4, 3, padding_mode="mirror"), "padding_mode"),
    (lambda: nn.Conv2d(4, 4, (3, 3, 3)), "kernel_size"),
    (lambda: nn.Conv2d(4, 4, 3, padding=-1), "padding"),
    (lambda: nn.ConvTranspose2d(4, 4, 3, stride=2, output_padding=2), "output padding"),
    (lambda: nn.ConvTranspose2d(4, 4, 3, padding="same"), "string padding"),
    (lambda: nn.Conv2d(4, 4, 3, device="cuda"), "CPU"),
    (lambda: nn.Linear(4, 4, dtype=np.float64), "float32"),
    (lambda: nn.Dropout(1.5), "between 0 and 1"),
    (lambda: nn.MaxPool2d(3, padding=2), "half of effective kernel"),
])
def test_constructor_validation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_linear_batchnorm_activation_defaults():
    lin = nn.Linear(5, 3)
    assert lin.weight.shape == (3, 5) and lin.bias.shape == (3,)
    assert nn.Linear(5, 3, bias=False).bias is None
    bn = nn.BatchNorm2d(4)
    assert (bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (1e-5, 0.1, True, True)
    np.testing.assert_array_equal(bn.weight, np.ones(4, np.float32))
    np.testing.assert_array_equal(bn.bias, np.zeros(4, np.float32))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4, np.float32))
    np.testing.assert_array_equal(bn.running_var, np.ones(4, np.float32))
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    assert int(bn.num_batches_tracked) == 0
    plain = nn.BatchNorm1d(3, affine=False, track_running_stats=False)
    assert plain.weight is None and plain.running_mean is None and plain.state_dict() == {}
    p = nn.PReLU(4, init=0.1)
    np.testing.assert_array_equal(p.weight, np.full(4, 0.1, np.float32))
    assert nn.PReLU().weight.shape == (1,)
    assert (nn.LeakyReLU().negative_slope, nn.Dropout().p, nn.ReLU().inplace) == (0.01, 0.5, False)
    assert (nn.Flatten().start_dim, nn.Flatten().end_dim) == (1, -1)
    assert (nn.ReLU6().min_val, nn.ReLU6().max_val) == (0.0, 6.0)
    mp = nn.MaxPool2d(3, 2, 1)
    assert (mp.kernel_size, mp.stride, mp.padding, mp.dilation, mp.ceil_mode) == (3, 2, 1, 1, False)
    ap = nn.AvgPool2d(7)
    assert (ap.kernel_size, ap.stride, ap.count_include_pad) == (7, 7, True)
    assert nn.AdaptiveAvgPool2d((1, 1)).output_size == (1, 1)
    assert isinstance(nn.Identity(54, unused="x"), nn.Identity)


def test_default_init_follows_torch_bounds():
    conv = nn.Conv2d(8, 64, 3, groups=2)             # fan_in = 4 * 9
    assert np.abs(conv.weight).max() <= 1 / 6 and np.abs(conv.weight).max() > 0.9 / 6
    assert np.abs(conv.bias).max() <= 1 / 6
    tconv = nn.ConvTranspose2d(64, 8, 2)             # torch: fan_in = weight.size(1) * k = 8 * 4
    bound = 1 / np.sqrt(32)
    assert bound * 0.9 < np.abs(tconv.weight).max() <= bound
    lin = nn.Linear(100, 50)
    assert 0.09 < np.abs(lin.weight).max() <= 0.1


def test_manual_seed_makes_init_reproducible():
    nn.manual_seed(7)
    a = nn.Conv2d(3, 4, 3).weight.copy()
    nn.manual_seed(7)
    b = nn.Conv2d(3, 4, 3).weight
    c = nn.Conv2d(3, 4, 3).weight
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_init_namespace():
    w = np.empty((256, 64, 3, 3), np.float32)
    assert nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu") is w
    assert abs(w.std() - np.sqrt(2 / (256 * 9))) < 0.02 * np.sqrt(2 / (256 * 9))
    nn.init.constant_(w, 3)
    assert np.all(w == 3) and w.dtype == np.float32
    with pytest.raises(ValueError, match="Mode"):
        nn.init.kaiming_normal_(w, mode="fan")


# ----------------------------------------------------------------------------
# repr
# ----------------------------------------------------------------------------

def test_repr_matches_torch():
    assert repr(nn.Conv2d(3, 16, 3, padding=1, bias=False)) == \
        "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)"
    assert repr(nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False)) == \
        "Conv2d(32, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=32, bias=False)"
    assert repr(nn.Conv1d(2, 2, 3, padding="same", dilation=2, padding_mode="circular")) == \
        "Conv1d(2, 2, kernel_size=(3,), stride=(1,), padding=same, dilation=(2,), padding_mode=circular)"
    assert repr(nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1)) == \
        "ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"
    assert repr(nn.Linear(512, 1000)) == "Linear(in_features=512, out_features=1000, bias=True)"
    assert repr(nn.BatchNorm2d(32)) == \
        "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    assert repr(nn.ReLU6(inplace=True)) == "ReLU6(inplace=True)"
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.LeakyReLU(0.2, inplace=True)) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    assert repr(nn.PReLU()) == "PReLU(num_parameters=1)"
    assert repr(nn.Dropout(0.2)) == "Dropout(p=0.2, inplace=False)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.MaxPool2d(kernel_size=3, stride=2, padding=1)) == \
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)"
    assert repr(nn.AvgPool2d(7)) == "AvgPool2d(kernel_size=7, stride=7, padding=0)"
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    assert repr(nn.Sigmoid()) == "Sigmoid()" and repr(nn.Identity()) == "Identity()"


def test_repr_nests_containers_like_torch():
    seq = nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU()), nn.Identity())
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Sequential(\n"
        "    (0): Conv2d(1, 2, kernel_size=(1, 1), stride=(1, 1))\n"
        "    (1): ReLU()\n"
        "  )\n"
        "  (1): Identity()\n"
        ")")
    ml = nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.ReLU(), nn.Sigmoid()])
    assert repr(ml) == "ModuleList(\n  (0-2): 3 x ReLU()\n  (3): Sigmoid()\n)"


# ----------------------------------------------------------------------------
# Containers
# ----------------------------------------------------------------------------

def test_sequential_indexing_slicing_and_assignment():
    a, b, c = nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c and seq[np.int64(1)] is b
    with pytest.raises(IndexError):
        seq[3]
    tail = seq[1:]
    assert type(tail) is nn.Sequential and list(tail._modules) == ["1", "2"] and tail[0] is b
    new = nn.ReLU6()
    seq[1] = new
    assert seq[1] is new and seq._modules["1"] is new
    seq[-1] = nn.Identity()
    assert isinstance(seq[2], nn.Identity)
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and isinstance(seq[1], nn.Identity)
    seq.insert(0, nn.Flatten())
    assert isinstance(seq[0], nn.Flatten) and seq[1] is a
    with pytest.raises(TypeError, match="child module"):
        seq[0] = np.zeros(3)


def test_sequential_from_ordered_dict_has_named_children():
    conv, act = nn.Conv2d(1, 1, 1), nn.ReLU()
    seq = nn.Sequential(OrderedDict([("conv", conv), ("act", act)]))
    assert seq.conv is conv and seq[1] is act and seq.act is act
    assert list(seq.state_dict()) == ["conv.weight", "conv.bias"]
    assert "conv" in dir(seq)


def test_sequential_runs_children_in_order():
    seq = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Identity())
    x = np.arange(-4, 4, dtype=np.float32).reshape(2, 2, 2)
    np.testing.assert_array_equal(seq(x), np.maximum(x, 0).reshape(2, 4))


def test_module_list():
    ml = nn.ModuleList([nn.ReLU(), nn.Sigmoid()])
    ml.append(nn.Identity())
    ml += [nn.Flatten()]
    assert len(ml) == 4 and isinstance(ml[-1], nn.Flatten) and isinstance(ml[1:3], nn.ModuleList)
    ml[0] = nn.ReLU6()
    assert isinstance(ml[0], nn.ReLU6)
    del ml[0]
    assert list(ml._modules) == ["0", "1", "2"]
    with pytest.raises(NotImplementedError):
        ml(np.zeros(1))


# ----------------------------------------------------------------------------
# Traversal, state_dict, attribute routing
# ----------------------------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.head = nn.Linear(4, 2)
        self.spare = None

    def forward(self, x):
        return self.head(F.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


def test_named_modules_order_and_prefixes():
    net = Net()
    names = [name for name, _ in net.named_modules()]
    assert names == ["", "features", "features.0", "features.1", "features.2", "head"]
    assert next(iter(net.named_modules()))[1] is net
    assert [n for n, _ in net.named_children()] == ["features", "head"]
    assert list(net.modules())[1] is net.features
    shared = nn.ReLU()
    twice = nn.Sequential(shared, shared)
    assert [n for n, _ in twice.named_modules()] == ["", "0"]
    assert net.get_submodule("features.1") is net.features[1]
    with pytest.raises(AttributeError):
        net.get_submodule("features.7")


def test_named_parameters_and_buffers():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == \
        ["features.0.weight", "features.1.weight", "features.1.bias", "head.weight", "head.bias"]
    assert [n for n, _ in net.named_buffers()] == \
        ["features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"]
    assert sum(p.size for p in net.parameters()) == 4 * 3 * 9 + 8 + 10


def test_state_dict_keys_and_live_values():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == ["features.0.weight", "features.1.weight", "features.1.bias",
                        "features.1.running_mean", "features.1.running_var",
                        "features.1.num_batches_tracked", "head.weight", "head.bias"]
    assert sd["features.0.weight"] is net.features[0].weight
    assert sd["features.1.num_batches_tracked"] is net.features[1].num_batches_tracked
    sd["head.bias"][:] = 5
    np.testing.assert_array_equal(net.head.bias, [5, 5])


def test_non_persistent_buffer_is_not_saved():
    m = nn.Module()
    m.register_buffer("kept", np.zeros(2))
    m.register_buffer("scratch", np.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["kept"] and [n for n, _ in m.named_buffers()] == ["kept", "scratch"]


def test_assignment_accepts_anything_for_registered_parameters():
    conv = nn.Conv2d(2, 3, 1, bias=False)
    w64 = np.ones((3, 2, 1, 1))
    conv.weight = w64                       # validated later, by whoever uses it
    assert conv.weight is w64 and conv._parameters["weight"] is w64
    conv.bias = np.zeros(3, np.float32)     # BN folding gives a bias-less conv a bias like this
    assert "bias" in conv.state_dict() and "bias" not in conv.__dict__
    assert "bias=False" not in repr(conv)
    conv.weight = "not an array"
    assert conv.weight == "not an array"
    bn = nn.BatchNorm2d(3)
    bn.running_mean = [1, 2, 3]
    assert bn._buffers["running_mean"] == [1, 2, 3]
    del conv.bias
    assert "bias" not in conv._parameters
    with pytest.raises(AttributeError):
        conv.bias


def test_module_assignment_and_replacement():
    net = Net()
    new_bn = nn.Identity()
    net.features[1] = new_bn
    assert net.features[1] is new_bn and "features.1.running_mean" not in net.state_dict()
    net.head = nn.Sequential(nn.Linear(4, 2))
    assert "head.0.weight" in net.state_dict()
    net.spare = nn.ReLU()                   # a plain attribute becomes a child when given a module
    assert "spare" in net._modules and "spare" not in net.__dict__
    net.spare = None                        # and can be emptied again, as in torch
    assert net._modules["spare"] is None and [n for n, _ in net.named_children()] == ["features", "head"]
    with pytest.raises(TypeError):
        net.head = 3
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        net.missing


def test_register_parameter_and_errors():
    m = nn.Module()
    w = np.zeros(3, np.float32)
    m.register_parameter("w", w)
    assert m.w is w                         # a float32 array is shared, like a torch Parameter
    m.register_parameter("v", [1, 2])
    assert m.v.dtype == np.float32
    with pytest.raises(KeyError, match='contain "."'):
        m.register_parameter("a.b", None)
    with pytest.raises(KeyError, match="already exists"):
        m.register_parameter("training", None)
    with pytest.raises(TypeError):
        m.register_parameter("s", np.array(["x"]))
    with pytest.raises(TypeError):
        m.add_module("x", np.zeros(1))


def test_uninitialised_module_reports_missing_super_init():
    class Bad(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_modules_are_hashable_by_identity():
    a, b = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)
    d = {a: "a", b: "b"}
    assert d[a] == "a" and d[b] == "b" and a != b


# ----------------------------------------------------------------------------
# load_state_dict
# ----------------------------------------------------------------------------

def test_load_state_dict_copies_and_converts():
    net, src = Net(), Net()
    sd = {k: np.asarray(v, dtype=np.float64) + 1 for k, v in src.state_dict().items()}
    weight = net.features[0].weight
    result = net.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert net.features[0].weight is weight          # updated in place: references stay live
    assert weight.dtype == np.float32
    np.testing.assert_allclose(weight, src.features[0].weight + 1, rtol=1e-6)
    nbt = net.features[1].num_batches_tracked
    assert nbt.dtype == np.int64 and int(nbt) == 1
    sd["head.bias"][:] = 9                           # values were copied, not aliased
    assert not np.any(net.head.bias == 9)


def test_load_state_dict_replaces_unusable_current_values():
    net = Net()
    net.head.weight = [[0.0] * 4] * 2               # a list assigned by hand: replaced by an array
    net.load_state_dict(Net().state_dict())
    assert isinstance(net.head.weight, np.ndarray) and net.head.weight.dtype == np.float32


def test_load_state_dict_strict_reports_keys():
    net = Net()
    sd = dict(net.state_dict())
    del sd["head.bias"]
    sd["head.extra"] = np.zeros(1)
    before = net.head.weight.copy()
    sd["head.weight"] = before + 1
    with pytest.raises(KeyError) as info:
        net.load_state_dict(sd)
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert msg.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "head.bias".' in msg
    assert 'Unexpected key(s) in state_dict: "head.extra".' in msg
    np.testing.assert_array_equal(net.head.weight, before)     # nothing was loaded
    result = net.load_state_dict(sd, strict=False)
    assert result == (["head.bias"], ["head.extra"])
    np.testing.assert_array_equal(net.head.weight, before + 1)


def test_load_state_dict_shape_mismatch_is_value_error_even_non_strict():
    net = Net()
    sd = dict(net.state_dict())
    sd["head.weight"] = np.zeros((3, 4))
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"size mismatch for head\.weight: .*\(3, 4\).*\(2, 4\)") as info:
            net.load_state_dict(sd, strict=strict)
        assert not isinstance(info.value, KeyError)


def test_load_state_dict_num_batches_tracked_rules():
    net = Net()
    sd = {k: v.astype(np.float32) for k, v in Net().state_dict().items()}
    sd["features.1.num_batches_tracked"] = np.float32(1140)    # how the shared npz stores it
    net.load_state_dict(sd)
    assert net.features[1].num_batches_tracked.dtype == np.int64
    assert int(net.features[1].num_batches_tracked) == 1140
    del sd["features.1.num_batches_tracked"]                   # old checkpoints lack it
    assert net.load_state_dict(sd).missing_keys == []
    sd["features.1.num_batches_tracked"] = np.float32(2.5)
    with pytest.raises(ValueError, match="num_batches_tracked"):
        net.load_state_dict(sd)
    with pytest.raises(TypeError):
        net.load_state_dict([("head.bias", np.zeros(2))])


# ----------------------------------------------------------------------------
# Mode, devices, copying, hooks
# ----------------------------------------------------------------------------

def test_train_eval_to():
    net = Net()
    assert net.eval() is net and all(not m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    with pytest.raises(ValueError):
        net.train("yes")
    for target in ("cpu", nn.device("cpu"), np.float32, "float32"):
        assert net.to(target) is net
    assert net.to(device="cpu", dtype=np.float32) is net
    for bad in ("cuda", np.float64, "cuda:0"):
        with pytest.raises(ValueError):
            net.to(bad)
    assert nn.device("cpu") == nn.device("cpu") and str(nn.device("cpu")) == "cpu"
    with pytest.raises(ValueError, match="CPU only"):
        nn.device("cuda")


def test_deepcopy_and_pickle_copy_arrays():
    net = Net()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.features[0] is not net.features[0]
        assert clone.features[0].weight is not net.features[0].weight
        np.testing.assert_array_equal(clone.features[0].weight, net.features[0].weight)
        assert list(clone.state_dict()) == list(net.state_dict())


def test_forward_hooks():
    relu = nn.ReLU()
    seen = []
    h1 = relu.register_forward_pre_hook(lambda m, args: (args[0] - 1,))
    h2 = relu.register_forward_hook(lambda m, args, out: seen.append(out) or out * 2)
    np.testing.assert_array_equal(relu(np.array([0.5, 3.0])), [0.0, 4.0])
    assert len(seen) == 1
    h1.remove()
    h2.remove()
    h2.remove()
    np.testing.assert_array_equal(relu(np.array([0.5, 3.0])), [0.5, 3.0])


def test_apply_visits_children_first():
    net = Net()
    order = []
    assert net.apply(lambda m: order.append(m)) is net
    assert order[-1] is net and order[0] is net.features[0]


# ----------------------------------------------------------------------------
# Forward in nn.py itself
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("layer, x", [
    (nn.Conv2d(1, 1, 1), np.zeros((1, 1, 2, 2), np.float32)),
    (nn.ConvTranspose1d(1, 1, 1), np.zeros((1, 1, 2), np.float32)),
    (nn.Linear(2, 2), np.zeros((1, 2), np.float32)),
    (nn.BatchNorm2d(1), np.zeros((1, 1, 2, 2), np.float32)),
    (nn.MaxPool2d(2), np.zeros((1, 1, 2, 2), np.float32)),
    (nn.AdaptiveAvgPool2d(1), np.zeros((1, 1, 2, 2), np.float32)),
])
def test_heavy_layers_run_on_the_library_like_the_reference(layer, x):
    x = x + np.arange(x.size, dtype=np.float32).reshape(x.shape) / 7
    expected = reference.run(layer.eval(), x)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="aimetcle runtime"):
        layer.forward(x)  # the layer object itself computes nothing


def test_elementwise_layers_run_in_numpy_without_touching_input():
    x = np.array([[-2.0, -0.5, 0.0, 3.0, 7.0]], np.float32)
    keep = x.copy()
    np.testing.assert_array_equal(nn.ReLU(inplace=True)(x), [[0, 0, 0, 3, 7]])
    np.testing.assert_array_equal(nn.ReLU6(inplace=True)(x), [[0, 0, 0, 3, 6]])
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x), [[-0.2, -0.05, 0, 3, 7]], rtol=1e-6)
    np.testing.assert_allclose(nn.PReLU(init=0.5)(x), [[-1, -0.25, 0, 3, 7]])
    np.testing.assert_allclose(nn.Sigmoid()(x), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    np.testing.assert_array_equal(x, keep)
    assert nn.ReLU()(x).dtype == np.float32 and nn.Sigmoid()(x).dtype == np.float32
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
    nn.manual_seed(0)
    y = nn.Dropout(0.5).train()(np.ones((1000,), np.float32))
    assert set(np.unique(y)) <= {0.0, 2.0} and 400 < np.count_nonzero(y) < 600


def test_functional_ops():
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4) - 10
    np.testing.assert_array_equal(F.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(F.relu6(x), np.clip(x, 0, 6))
    assert F.flatten(x, 1).shape == (1, 24) and F.flatten(x, 0, 1).shape == (2, 3, 4)
    assert F.cat([x, x], dim=1).shape == (1, 4, 3, 4) and F.cat([x, x], 1).shape == (1, 4, 3, 4)
    pooled = F.adaptive_avg_pool2d(x, 1)
    assert pooled.shape == (1, 2, 1, 1) and pooled.dtype == np.float32
    np.testing.assert_allclose(pooled.ravel(), x.mean(axis=(2, 3)).ravel())
    with pytest.raises(NotImplementedError):
        F.adaptive_avg_pool2d(x, 2)


def test_functional_ops_dispatch_to_symbolic_values():
    class Symbol:
        def __aimetcle_function__(self, name, args, kwargs):
            return ("called", name, len(args))

    assert F.relu(Symbol()) == ("called", "relu", 1)
    assert F.cat([np.zeros(1), Symbol()], dim=0) == ("called", "cat", 1)


# ----------------------------------------------------------------------------
# The oracle: reference.py against loops written from the definitions
# ----------------------------------------------------------------------------

def _source_index(i, n, mode):
    """Where padded position i reads from, or None for a zero."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return None
    if mode == "reflect":
        return -i if i < 0 else 2 * (n - 1) - i
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    return i % n  # circular


def naive_conv2d(x, w, b, stride, pads, dilation, groups, mode="zeros"):
    """out[n, o, y, x] = b[o] + sum_{c, i, j} x[n, g*Cg + c, y*s - p + i*d, ...] * w[o, c, i, j]."""
    n_, c_, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    (plh, phh), (plw, phw) = pads
    oh = (h + plh + phh - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + plw + phw - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    per = cout // groups
    out = np.zeros((n_, cout, oh, ow))
    for n, o, y, xx in itertools.product(range(n_), range(cout), range(oh), range(ow)):
        g = o // per
        acc = 0.0 if b is None else float(b[o])
        for c, i, j in itertools.product(range(cg), range(kh), range(kw)):
            sy = _source_index(y * stride[0] - plh + i * dilation[0], h, mode)
            sx = _source_index(xx * stride[1] - plw + j * dilation[1], wd, mode)
            if sy is not None and sx is not None:
                acc += float(x[n, g * cg + c, sy, sx]) * float(w[o, c, i, j])
        out[n, o, y, xx] = acc
    return out


def naive_conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation):
    """Scatter-add: out[n, g*Cog + o, y*s - p + i*d, ...] += x[n, ci, y, x] * w[ci, o, i, j]."""
    n_, cin, h, wd = x.shape
    _, cog, kh, kw = w.shape
    cig = cin // groups
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
    out = np.zeros((n_, cog * groups, oh, ow))
    if b is not None:
        out += np.asarray(b, np.float64).reshape(1, -1, 1, 1)
    for n, ci, y, xx, o, i, j in itertools.product(range(n_), range(cin), range(h), range(wd),
                                                   range(cog), range(kh), range(kw)):
        ty = y * stride[0] - padding[0] + i * dilation[0]
        tx = xx * stride[1] - padding[1] + j * dilation[1]
        if 0 <= ty < oh and 0 <= tx < ow:
            out[n, (ci // cig) * cog + o, ty, tx] += float(x[n, ci, y, xx]) * float(w[ci, o, i, j])
    return out


def _rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


CONV_CASES = [
    # cin, cout, k, stride, padding, dilation, groups, mode, bias
    (3, 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, "zeros", True),
    (3, 4, (3, 2), (2, 1), (1, 2), (1, 1), 1, "zeros", False),
    (4, 6, (3, 3), (2, 2), (1, 1), (2, 1), 2, "zeros", True),
    (4, 4, (3, 3), (1, 1), (1, 1), (1, 1), 4, "zeros", False),      # depthwise
    (2, 6, (3, 3), (1, 2), (1, 1), (1, 1), 2, "zeros", True),       # depthwise multiplier 3
    (2, 3, (4, 3), (1, 1), "same", (1, 2), 1, "zeros", True),       # even kernel: extra pad after
    (2, 3, (3, 3), (1, 1), "valid", (1, 1), 1, "zeros", True),
    (2, 2, (3, 3), (1, 1), (2, 1), (1, 1), 1, "reflect", True),
    (2, 2, (3, 3), (2, 1), (1, 2), (1, 1), 2, "replicate", True),
    (2, 2, (3, 3), (1, 1), "same", (2, 1), 1, "circular", True),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_reference_conv2d_matches_direct_loops(case):
    cin, cout, k, stride, padding, dilation, groups, mode, bias = case
    rng = np.random.default_rng(1)
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, bias, mode)
    x = _rand(rng, 2, cin, 6, 7)
    pads = reference._conv_pads(conv.padding, conv.kernel_size, conv.dilation)
    expected = naive_conv2d(x, conv.weight, conv.bias, stride, pads, dilation, groups, mode)
    with reference.numpy_forward():
        got = conv(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_same_padding_keeps_size_and_pads_after_for_even_kernels():
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 0, 0] = 1
    w = np.zeros((1, 1, 2, 2), np.float32)
    w[0, 0, 0, 0] = 1                                # picks the top-left tap of each window
    y = reference.conv2d(x, w, padding="same")
    assert y.shape == (1, 1, 5, 5) and y[0, 0, 0, 0] == 1   # nothing padded before: torch's rule


@pytest.mark.parametrize("stride, padding, dilation, groups, mode", [
    (1, 0, 1, 1, "zeros"), (2, 1, 1, 2, "zeros"), (1, "same", 2, 1, "reflect"), (3, 2, 1, 4, "circular"),
])
def test_reference_conv1d_matches_direct_loops(stride, padding, dilation, groups, mode):
    rng = np.random.default_rng(2)
    conv = nn.Conv1d(4, 8, 3, stride, padding, dilation, groups, True, mode)
    x = _rand(rng, 2, 4, 9)
    pads = ((0, 0),) + reference._conv_pads(conv.padding, conv.kernel_size, conv.dilation)
    expected = naive_conv2d(x[:, :, None, :], conv.weight[:, :, None, :], conv.bias, (1, stride),
                            pads, (1, dilation), groups, mode)[:, :, 0, :]
    with reference.numpy_forward():
        np.testing.assert_allclose(conv(x), expected, rtol=1e-5, atol=1e-5)


TRANSPOSE_CASES = [
    # cin, cout, k, stride, padding, output_padding, groups, dilation, bias
    (3, 4, (3, 3), (1, 1), (0, 0), (0, 0), 1, (1, 1), True),
    (3, 2, (3, 2), (2, 2), (1, 0), (1, 1), 1, (1, 1), False),
    (4, 6, (3, 3), (2, 3), (1, 1), (1, 2), 2, (1, 1), True),
    (4, 4, (3, 3), (2, 1), (2, 1), (0, 0), 4, (2, 2), True),        # depthwise, dilated
    (2, 2, (2, 2), (3, 3), (0, 1), (2, 1), 1, (1, 2), True),
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_reference_conv_transpose2d_matches_scatter_definition(case):
    cin, cout, k, stride, padding, output_padding, groups, dilation, bias = case
    rng = np.random.default_rng(3)
    layer = nn.ConvTranspose2d(cin, cout, k, stride, padding, output_padding, groups, bias, dilation)
    x = _rand(rng, 2, cin, 4, 3)
    expected = naive_conv_transpose2d(x, layer.weight, layer.bias, stride, padding, output_padding,
                                      groups, dilation)
    with reference.numpy_forward():
        got = layer(x)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_reference_conv_transpose1d_matches_scatter_definition():
    rng = np.random.default_rng(4)
    layer = nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    x = _rand(rng, 2, 4, 5)
    expected = naive_conv_transpose2d(x[:, :, None, :], layer.weight[:, :, None, :], layer.bias,
                                      (1, 2), (0, 1), (0, 1), 2, (1, 1))[:, :, 0, :]
    with reference.numpy_forward():
        np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 1, 1, 1), (2, 1, 1, 2), (2, 0, 2, 1), (3, 2, 1, 3)])
def test_conv_transpose_is_the_adjoint_of_conv(stride, padding, dilation, groups):
    """<conv(x), y> == <x, conv_transpose(y)> with the same weight array: an oracle
    that shares no code with either implementation's indexing."""
    rng = np.random.default_rng(5)
    cin, cout, k, h = 3 * groups, 2 * groups, 3, 8
    w = _rand(rng, cout, cin // groups, k, k)
    x = _rand(rng, 2, cin, h, h)
    y_shape = reference.conv2d(x, w, None, stride, padding, dilation, groups).shape
    oh = y_shape[2]
    output_padding = h - ((oh - 1) * stride - 2 * padding + dilation * (k - 1) + 1)
    y = _rand(rng, *y_shape)
    back = reference.conv_transpose2d(y, w, None, stride, padding, output_padding, groups, dilation)
    assert back.shape == x.shape
    lhs = np.vdot(reference.conv2d(x, w, None, stride, padding, dilation, groups).astype(np.float64), y)
    rhs = np.vdot(x.astype(np.float64), back)
    assert abs(lhs - rhs) <= 1e-4 * max(1.0, abs(lhs))


def test_reference_linear_and_batchnorm():
    rng = np.random.default_rng(6)
    lin = nn.Linear(5, 3)
    x = _rand(rng, 4, 5)
    bn = nn.BatchNorm2d(3, eps=1e-3).eval()
    bn.weight[:] = [1.0, 2.0, -1.0]
    bn.bias[:] = [0.0, 0.5, 1.0]
    bn.running_mean[:] = [0.1, -0.2, 0.3]
    bn.running_var[:] = [1.0, 4.0, 0.25]
    z = _rand(rng, 2, 3, 2, 2)
    with reference.numpy_forward():
        np.testing.assert_allclose(lin(x), x @ lin.weight.T + lin.bias, rtol=1e-5, atol=1e-6)
        y = bn(z)
        bn1 = nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
        y1 = bn1(z[:, :, :, 0])
        with pytest.raises(NotImplementedError, match="eval"):
            nn.BatchNorm2d(3)(z)                       # training mode: torch would use batch stats
        with pytest.raises(ValueError, match="4D"):
            bn(z[:, :, 0])
    for c in range(3):
        expect = (z[:, c] - bn.running_mean[c]) / np.sqrt(bn.running_var[c] + 1e-3) * bn.weight[c] + bn.bias[c]
        np.testing.assert_allclose(y[:, c], expect, rtol=1e-5, atol=1e-6)
    zc = z[:, :, :, 0].astype(np.float64)
    np.testing.assert_allclose(y1, (zc - zc.mean((0, 2), keepdims=True)) / np.sqrt(zc.var((0, 2), keepdims=True)
                                                                                     + 1e-5), rtol=1e-4, atol=1e-5)


def naive_pool(x, k, s, p, d, ceil_mode, op, count_include_pad=True):
    n_, c_, h, w = x.shape
    oh = reference._pool_size(h, k, s, p, d, ceil_mode)
    ow = reference._pool_size(w, k, s, p, d, ceil_mode)
    out = np.zeros((n_, c_, oh, ow))
    for y, xx in itertools.product(range(oh), range(ow)):
        ys = [y * s - p + i * d for i in range(k)]
        xs = [xx * s - p + j * d for j in range(k)]
        inside = [(a, b) for a in ys for b in xs if 0 <= a < h and 0 <= b < w]
        vals = np.stack([x[:, :, a, b] for a, b in inside], axis=-1)
        if op == "max":
            out[:, :, y, xx] = vals.max(-1)
        else:
            # torch: padded cells count, but not cells past the padded input (ceil_mode overhang)
            span_y = min(y * s - p + k, h + p) - (y * s - p)
            span_x = min(xx * s - p + k, w + p) - (xx * s - p)
            out[:, :, y, xx] = vals.sum(-1) / (span_y * span_x if count_include_pad else len(inside))
    return out


@pytest.mark.parametrize("k, s, p, d, ceil_mode", [(3, 2, 1, 1, False), (2, 2, 0, 1, True), (3, 2, 1, 2, True),
                                                   (3, 3, 1, 1, True)])
def test_reference_max_pool(k, s, p, d, ceil_mode):
    x = _rand(np.random.default_rng(7), 2, 3, 7, 8)
    with reference.numpy_forward():
        got = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil_mode)(x)
    np.testing.assert_array_equal(got, naive_pool(x, k, s, p, d, ceil_mode, "max"))


@pytest.mark.parametrize("k, s, p, ceil_mode, include", [(3, 2, 1, False, True), (3, 2, 1, True, False),
                                                         (2, 3, 1, True, True), (7, None, 0, False, True)])
def test_reference_avg_pool(k, s, p, ceil_mode, include):
    x = _rand(np.random.default_rng(8), 2, 3, 7, 8)
    with reference.numpy_forward():
        got = nn.AvgPool2d(k, s, p, ceil_mode, include)(x)
    np.testing.assert_allclose(got, naive_pool(x, k, k if s is None else s, p, 1, ceil_mode, "avg", include),
                               rtol=1e-5, atol=1e-6)


def test_reference_adaptive_avg_pool():
    x = _rand(np.random.default_rng(9), 1, 2, 5, 7)
    with reference.numpy_forward():
        got = nn.AdaptiveAvgPool2d((2, 3))(x)
        np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x)[..., 0, 0], x.mean((2, 3)), rtol=1e-6)
        assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (1, 2, 5, 2)
    # torch: rows [floor(i*H/oh), ceil((i+1)*H/oh)) -> H=5, oh=2: [0,3), [2,5); W=7, ow=3: [0,3), [2,5), [4,7)
    np.testing.assert_allclose(got[0, 1, 1, 2], x[0, 1, 2:5, 4:7].mean(), rtol=1e-6)
    np.testing.assert_allclose(got[0, 0, 0, 1], x[0, 0, 0:3, 2:5].mean(), rtol=1e-6)


def test_numpy_forward_restores_the_layers():
    conv = nn.Conv2d(1, 1, 1)
    x = np.ones((1, 1, 1, 1), np.float32)
    with reference.numpy_forward():
        conv(x)
        with reference.numpy_forward():
            conv(x)
        conv(x)
    with pytest.raises(NotImplementedError):
        conv.forward(x)                               # nn.py's own forward is back
    d = nn.Dropout(0.5).eval()
    assert d(x) is x
