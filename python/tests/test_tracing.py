"""aimetcle.tracing turns a module tree into an ONNX-style graph.

Structure is checked directly (nodes, attributes, parameter names, shapes,
op counts of the zoo models, and node-by-node against torch's ONNX export
of digits_mbv2); behaviour is checked independently by interpreting the
traced graph with graph_reference.py and comparing with the model's own
NumPy reference forward.
"""
import pathlib
from collections import Counter

import numpy as np
import pytest

import reference
from aimetcle import models, nn, tracing
from aimetcle.tracing import NodeSpec, TraceError
from graph_reference import run_graph

F = nn.functional
DATA = pathlib.Path(__file__).resolve().parents[2] / "data"


def op_counts(desc):
    return dict(Counter(n.op for n in desc.nodes))


def node(desc, name):
    return next(n for n in desc.nodes if n.name == name)


def randomize_bn(model, seed=0):
    """Non-trivial BN statistics, so that swapped or missing BN inputs change the output."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            if m.weight is not None:
                m.weight[...] = rng.uniform(0.5, 1.5, c)
                m.bias[...] = rng.normal(0.0, 0.1, c)
            m.running_mean[...] = rng.normal(0.0, 0.1, c)
            m.running_var[...] = rng.uniform(0.5, 2.0, c)
    return model


def assert_close(got, want):
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))


def graph_params(model):
    """The state_dict keys a graph uses: everything but num_batches_tracked."""
    return [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]


@pytest.fixture(scope="module")
def r18():
    return randomize_bn(models.resnet18().eval(), 1)


@pytest.fixture(scope="module")
def mbv2():
    return randomize_bn(models.mobilenet_v2().eval(), 2)


@pytest.fixture(scope="module")
def digits():
    return models.digits_mbv2(weights=str(DATA / "digits_mbv2.npz")).eval()


class Net(nn.Module):
    """User code: residual add, a layer called twice, functional relu / cat / flatten, a scalar."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.branch_a = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.branch_b = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(12 * 4 * 4, 5)

    def forward(self, x):
        y = self.act(self.bn(self.stem(x)))
        y = self.act(y + self.branch_a(y))
        z = F.cat([y, F.relu(self.branch_b(y))], 1)
        return self.fc(F.flatten(z * 0.5, 1))


class Zoo(nn.Module):
    """Two inputs, two outputs, and every other layer type and option the tracer maps."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(2, 4, 3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm1d(4, affine=False, momentum=None)
        self.t1 = nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1)
        self.prelu = nn.PReLU(3, init=0.1)
        self.lin = nn.Linear(30, 7)
        self.c2 = nn.Conv2d(3, 6, 4, padding="same")  # even kernel: pads (1, 2) per axis
        self.leaky = nn.LeakyReLU(0.2)
        self.c3 = nn.Conv2d(6, 6, 3, padding="valid", dilation=2, groups=3)
        self.t2 = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, groups=2, dilation=2)
        self.bn2 = nn.BatchNorm2d(4)
        self.relu6 = nn.ReLU6()
        self.mp = nn.MaxPool2d(2, 2, padding=1, dilation=2, ceil_mode=True)
        self.sig = nn.Sigmoid()
        self.ap = nn.AvgPool2d(2, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.aap = nn.AdaptiveAvgPool2d((1, None))
        self.ident = nn.Identity()
        self.flat = nn.Flatten(2)
        self.drop = nn.Dropout(0.5)

    def forward(self, seq, img):
        s = self.prelu(self.t1(self.bn1(self.c1(seq))))
        s = self.lin(s.reshape(s.shape[0], -1))
        y = self.c3(self.leaky(self.c2(img)))
        y = self.mp(self.relu6(self.bn2(self.t2(y))))
        y = self.ap(self.sig(y))
        f = self.flat(self.ident(self.aap(y)))
        # y = mean of sigmoid(relu6(.)) is in [0.5, 1): both sides of leaky_relu's kink and
        # both of relu6's clips are reached
        out = F.cat([F.flatten(f, 1), y.mean((2, 3)), F.leaky_relu(y - 0.75, 0.3).mean((-1, -2)),
                     F.relu6(y * 40.0 - 25.0).mean((2, 3))], 1)
        return s, 1.0 - self.drop(out) * 2.0


# ----------------------------------------------------------------------------
# Structure
# ----------------------------------------------------------------------------

def test_sequential_conv_bn_relu():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8, eps=1e-3), nn.ReLU())
    desc = tracing.trace(model, (2, 3, 16, 16))
    assert desc.nodes == [
        NodeSpec("0", "Conv", ["input", "0.weight", "0.bias"], ["0"],
                 {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "dilations": [1, 1],
                  "group": 1}, "0"),
        NodeSpec("1", "BatchNormalization", ["0", "1.weight", "1.bias", "1.running_mean", "1.running_var"],
                 ["1"], {"epsilon": 1e-3, "momentum": 0.9}, "1"),
        NodeSpec("2", "Relu", ["1"], ["2"], {}, "2"),
    ]
    assert desc.inputs == [("input", (2, 3, 16, 16))] and desc.outputs == ["2"]
    assert desc.shapes == {"input": (2, 3, 16, 16), "0": (2, 8, 8, 8), "1": (2, 8, 8, 8), "2": (2, 8, 8, 8)}
    assert list(desc.params) == graph_params(model) and desc.synthetic == set()
    sd = model.state_dict()
    assert all(desc.params[k] is sd[k] for k in desc.params)  # live arrays, not copies


def test_resnet18_graph(r18):
    desc = tracing.trace(r18, (1, 3, 224, 224))
    assert op_counts(desc) == {"Conv": 20, "BatchNormalization": 20, "Relu": 17, "MaxPool": 1, "Add": 8,
                               "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    assert len(desc.nodes) == 69 and desc.outputs == ["fc"] and desc.shapes["fc"] == (1, 1000)
    assert sorted(desc.params) == sorted(graph_params(r18)) and not desc.synthetic
    # the shared ReLU of a BasicBlock: one module, two nodes
    first, second = node(desc, "layer1.0.relu"), node(desc, "layer1.0.relu_1")
    assert first.module == second.module == "layer1.0.relu"
    assert first.inputs == ["layer1.0.bn1"] and second.inputs == ["add"]
    # residual adds: identity, then the downsample path
    assert node(desc, "add").inputs == ["layer1.0.bn2", "maxpool"]
    assert node(desc, "add_2").inputs == ["layer2.0.bn2", "layer2.0.downsample.1"]
    down = node(desc, "layer2.0.downsample.0")
    assert down.inputs == ["layer1.1.relu_1", "layer2.0.downsample.0.weight"]
    assert down.attrs["strides"] == [2, 2] and down.attrs["kernel_shape"] == [1, 1]
    assert node(desc, "layer2.0.downsample.1").inputs[0] == "layer2.0.downsample.0"
    assert node(desc, "maxpool").attrs == {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                           "dilations": [1, 1], "ceil_mode": 0}
    assert desc.shapes["maxpool"] == (1, 64, 56, 56) and desc.shapes["layer4.1.relu_1"] == (1, 512, 7, 7)
    assert node(desc, "avgpool").op == "GlobalAveragePool"
    flat = node(desc, "flatten")
    assert (flat.op, flat.inputs, flat.attrs, flat.module) == ("Flatten", ["avgpool"], {"axis": 1}, None)
    assert node(desc, "fc").attrs == {"alpha": 1.0, "beta": 1.0, "transB": 1}


def test_mobilenet_v2_graph(mbv2):
    desc = tracing.trace(mbv2, (1, 3, 224, 224))
    assert op_counts(desc) == {"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10,
                               "GlobalAveragePool": 1, "Flatten": 1, "Dropout": 1, "Gemm": 1}
    assert all(n.attrs == {"min": 0.0, "max": 6.0} for n in desc.nodes if n.op == "Clip")
    depthwise = [n for n in desc.nodes if n.op == "Conv" and n.attrs["group"] > 1]
    assert len(depthwise) == 17
    for n in depthwise:
        weight = desc.params[n.inputs[1]]
        assert n.attrs["group"] == desc.shapes[n.inputs[0]][1] == weight.shape[0] and weight.shape[1] == 1
    assert node(desc, "features.1.conv.0.0").attrs["group"] == 32
    assert node(desc, "features.2.conv.1.0").attrs["group"] == 96
    assert node(desc, "add").inputs == ["features.2.conv.3", "features.3.conv.3"]
    assert node(desc, "classifier.0").op == "Dropout" and desc.outputs == ["classifier.1"]
    assert sorted(desc.params) == sorted(graph_params(mbv2))


def test_aimet_example_mobilenet_v2_graph():
    model = models.MobileNetV2()
    desc = tracing.trace(model, (1, 3, 224, 224))
    assert op_counts(desc) == {"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10, "AveragePool": 1,
                               "Flatten": 1, "Dropout": 1, "Gemm": 1}
    dw, pw = node(desc, "features.1.conv.0"), node(desc, "features.1.conv.3")
    assert dw.attrs["group"] == 32 and pw.attrs["group"] == 1
    assert node(desc, "features.1.conv.4").inputs[0] == "features.1.conv.3"
    assert node(desc, "features.19").attrs["kernel_shape"] == [7, 7] and desc.shapes["features.19"] == (1, 1280, 1, 1)
    assert sorted(desc.params) == sorted(graph_params(model))


def test_digits_mbv2_matches_torch_onnx_export(digits):
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(DATA / "digits_mbv2.onnx")).graph
    desc = tracing.trace(digits, (1, 1, 16, 16))
    expected = {"Conv": 14, "BatchNormalization": 14, "Clip": 10, "Add": 2, "GlobalAveragePool": 1,
                "Flatten": 1, "Gemm": 1}
    theirs_nodes = [n for n in graph.node if n.op_type != "Constant"]  # Clip's min / max are Constants
    assert dict(Counter(n.op_type for n in theirs_nodes)) == expected
    # torch's eval-mode export drops Dropout; the trace keeps it as an identity
    assert op_counts(desc) == {**expected, "Dropout": 1}
    assert {i.name for i in graph.initializer} == set(desc.params)
    assert [i.name for i in graph.input] == [name for name, _ in desc.inputs] == ["input"]

    constants = {n.output[0]: float(onnx.numpy_helper.to_array(n.attribute[0].t))
                 for n in graph.node if n.op_type == "Constant"}
    skip = {n.name: n.inputs[0] for n in desc.nodes if n.op == "Dropout"}
    ours = [n for n in desc.nodes if n.op != "Dropout"]
    mapping = {"input": "input"}  # ONNX value name -> traced value name
    assert len(theirs_nodes) == len(ours)
    for theirs, mine in zip(theirs_nodes, ours):
        assert theirs.op_type == mine.op
        assert [mapping.get(v, v) for v in theirs.input if v not in constants] == [skip.get(v, v) for v in mine.inputs]
        mapping[theirs.output[0]] = mine.name
        if mine.module is not None:  # ONNX names a layer's node /.../<end of its module path>/<Op>
            scope = theirs.name.split("/")[-2]
            assert mine.module == scope or mine.module.endswith("." + scope)
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in theirs.attribute}
        if mine.op == "Clip":
            attrs = {"min": constants[theirs.input[1]], "max": constants[theirs.input[2]]}
        if mine.op == "BatchNormalization":
            assert attrs.pop("training_mode") == 0
        assert attrs.keys() == mine.attrs.keys(), mine.name
        for key, value in attrs.items():
            assert value == pytest.approx(mine.attrs[key], rel=1e-7), (mine.name, key)
    assert desc.outputs == [mapping[graph.output[0].name]]


def test_user_module():
    model = Net()
    desc = tracing.trace(model, dummy_input=np.zeros((2, 3, 4, 4), np.float32))
    assert [(n.name, n.op, n.module) for n in desc.nodes] == [
        ("stem", "Conv", "stem"), ("bn", "BatchNormalization", "bn"), ("act", "Relu", "act"),
        ("branch_a", "Conv", "branch_a"), ("add", "Add", None), ("act_1", "Relu", "act"),
        ("branch_b", "Conv", "branch_b"), ("relu", "Relu", None), ("concat", "Concat", None),
        ("mul", "Mul", None), ("flatten", "Flatten", None), ("fc", "Gemm", "fc")]
    assert node(desc, "add").inputs == ["act", "branch_a"]
    assert node(desc, "concat").inputs == ["act_1", "relu"] and node(desc, "concat").attrs == {"axis": 1}
    assert node(desc, "mul").inputs == ["concat", "_const_0"]
    assert desc.synthetic == {"_const_0"} and desc.params["_const_0"] == np.float32(0.5)
    assert desc.params["_const_0"].shape == () and desc.params["_const_0"].dtype == np.float32
    assert desc.shapes["concat"] == (2, 12, 4, 4) and desc.shapes["fc"] == (2, 5)
    assert sorted(set(desc.params) - desc.synthetic) == sorted(graph_params(model))


def test_zoo_of_layers():
    model = Zoo()
    desc = tracing.trace(model, [(2, 2, 9), (2, 3, 10, 10)])
    assert desc.inputs == [("input.0", (2, 2, 9)), ("input.1", (2, 3, 10, 10))]
    assert desc.outputs == ["lin", "sub_2"]
    assert node(desc, "c1").attrs["pads"] == [1, 1]
    assert node(desc, "c2").attrs["pads"] == [1, 1, 2, 2]
    assert node(desc, "c3").attrs == {"kernel_shape": [3, 3], "strides": [1, 1], "pads": [0, 0, 0, 0],
                                      "dilations": [2, 2], "group": 3}
    assert node(desc, "t1").op == "ConvTranspose" and node(desc, "t1").attrs["output_padding"] == [1]
    assert node(desc, "t2").attrs["dilations"] == [2, 2] and node(desc, "t2").attrs["group"] == 2
    assert node(desc, "bn1").attrs == {"epsilon": 1e-5, "momentum": 0.9}
    assert node(desc, "bn1").inputs[1:3] == ["bn1.weight", "bn1.bias"]
    assert desc.synthetic == {"bn1.weight", "bn1.bias"} | {f"_const_{i}" for i in range(5)}
    np.testing.assert_array_equal(desc.params["bn1.weight"], np.ones(4, np.float32))
    np.testing.assert_array_equal(desc.params["bn1.bias"], np.zeros(4, np.float32))
    assert node(desc, "prelu").inputs == ["t1", "prelu.weight"]
    assert node(desc, "leaky").attrs == {"alpha": 0.2}
    assert node(desc, "relu6").attrs == {"min": 0.0, "max": 6.0}
    assert node(desc, "mp").attrs["ceil_mode"] == 1 and node(desc, "mp").attrs["dilations"] == [2, 2]
    assert node(desc, "ap").attrs == {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1],
                                      "ceil_mode": 1, "count_include_pad": 0}
    aap = node(desc, "aap")
    assert aap.op == "AveragePool" and aap.attrs["kernel_shape"] == [desc.shapes["ap"][2], 1]
    assert (node(desc, "flat").op, node(desc, "flat").attrs) == ("Reshape", {"shape": [2, 4, desc.shapes["ap"][3]]})
    # torch's ceil_mode drops a last window that would start in the right padding: 7 -> 4, not 5
    assert desc.shapes["mp"] == (2, 4, 7, 7) and desc.shapes["ap"] == (2, 4, 4, 4)
    assert [(n.op, n.inputs) for n in desc.nodes if n.name.startswith("flatten")] == [
        ("Flatten", ["prelu"]), ("Flatten", ["flat"]), ("Flatten", ["global_average_pool"]),
        ("Flatten", ["global_average_pool_1"]), ("Flatten", ["global_average_pool_2"])]
    assert node(desc, "sub").inputs == ["ap", "_const_0"] and node(desc, "sub_2").inputs == ["_const_4", "mul_1"]


def test_tensor_methods():
    seen = {}

    class Views(nn.Module):
        def forward(self, x):
            seen.update(dim=x.dim(), ndim=x.ndim, size=x.size(), last=x.size(-1), shape=x.shape)
            return (x.view(x.size(0), -1), x.reshape(-1, 60), x.view((2, 3, 20)), x.flatten(),
                    x.flatten(1), x.mean((-1, -2), keepdim=True), x.mean([2, 3]))

    desc = tracing.trace(Views(), (2, 3, 4, 5))
    assert seen == {"dim": 4, "ndim": 4, "size": (2, 3, 4, 5), "last": 5, "shape": (2, 3, 4, 5)}
    ops = [(n.op, n.attrs) for n in desc.nodes]
    assert ops == [("Flatten", {"axis": 1}), ("Flatten", {"axis": 1}), ("Reshape", {"shape": [2, 3, 20]}),
                   ("Reshape", {"shape": [120]}), ("Flatten", {"axis": 1}), ("GlobalAveragePool", {}),
                   ("GlobalAveragePool", {}), ("Flatten", {"axis": 1})]
    assert [desc.shapes[o] for o in desc.outputs] == [(2, 60), (2, 60), (2, 3, 20), (120,), (2, 60),
                                                      (2, 3, 1, 1), (2, 3)]


def test_scalar_operands_and_order():
    class Arith(nn.Module):
        def forward(self, x):
            return (2 * x, x * np.float32(0.5), 1 - x, x - 1, np.float32(3) * x, x + x)

    desc = tracing.trace(Arith(), (1, 4))
    assert [(n.op, n.inputs) for n in desc.nodes] == [
        ("Mul", ["_const_0", "input"]), ("Mul", ["input", "_const_1"]), ("Sub", ["_const_2", "input"]),
        ("Sub", ["input", "_const_3"]), ("Mul", ["_const_4", "input"]), ("Add", ["input", "input"])]
    assert [float(desc.params[f"_const_{i}"]) for i in range(5)] == [2.0, 0.5, 1.0, 1.0, 3.0]
    assert desc.synthetic == {f"_const_{i}" for i in range(5)}
    assert [n.name for n in desc.nodes] == ["mul", "mul_1", "sub", "sub_1", "mul_2", "add"]


def test_operation_names_never_take_a_module_path():
    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.relu(F.relu(x)))

    desc = tracing.trace(Named(), (1, 2))
    assert [(n.name, n.module) for n in desc.nodes] == [("relu_1", None), ("relu", "relu"), ("relu_2", "relu")]


def test_parameter_free_user_layers_are_traced_through():
    class Swish(nn.Module):
        def forward(self, x):
            return x * F.sigmoid(x)

    desc = tracing.trace(nn.Sequential(nn.Conv2d(1, 2, 1), Swish(), nn.ReLU()), (1, 1, 3, 3))
    assert [(n.name, n.op, n.inputs) for n in desc.nodes] == [
        ("0", "Conv", ["input", "0.weight", "0.bias"]), ("sigmoid", "Sigmoid", ["0"]),
        ("mul", "Mul", ["0", "sigmoid"]), ("2", "Relu", ["mul"])]


def test_trace_has_eval_semantics_and_restores_training_flags():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 1)

        def forward(self, x):
            seen.append((self.training, self.conv.training))
            return self.conv(x)

    model = Probe()
    model.conv.eval()
    tracing.trace(model, (1, 1, 2, 2))
    assert seen == [(False, False)]
    assert model.training is True and model.conv.training is False


def test_describe(r18):
    desc = tracing.trace(r18, (1, 3, 32, 32))
    text = tracing.describe(desc)
    lines = text.splitlines()
    assert len(lines) == len(desc.nodes) + 2
    assert lines[0] == "inputs: input [1, 3, 32, 32]" and lines[-1] == "outputs: fc"
    assert lines[1].split() == ["conv1", "Conv", "input,", "conv1.weight", "->", "conv1", "[1,", "64,", "16,", "16]"]
    assert any(line.split()[:2] == ["layer1.0.relu_1", "Relu"] for line in lines)


# ----------------------------------------------------------------------------
# The traced graph computes what the model computes
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["r18", "mbv2"])
def test_interpreted_graph_matches_reference_zoo_models(name, request):
    model = request.getfixturevalue(name)
    x = np.random.default_rng(3).normal(size=(1, 3, 32, 32)).astype(np.float32)
    desc = tracing.trace(model, x.shape)
    assert_close(run_graph(desc, x), reference.run(model, x))


def test_interpreted_graph_matches_reference_trained_digits(digits):
    with np.load(DATA / "digits.npz") as data:
        x, y = data["x_test"][:16], data["y_test"][:16]
    desc = tracing.trace(digits, x.shape)
    want = reference.run(digits, x)
    assert (want.argmax(1) == y).mean() >= 0.9  # the trained weights are the ones in use
    assert_close(run_graph(desc, x), want)


def test_interpreted_graph_matches_reference_user_modules():
    rng = np.random.default_rng(4)
    net = randomize_bn(Net().eval(), 5)
    x = rng.normal(size=(2, 3, 4, 4)).astype(np.float32)
    assert_close(run_graph(tracing.trace(net, x.shape), x), reference.run(net, x))

    zoo = randomize_bn(Zoo().eval(), 6)
    seq, img = rng.normal(size=(2, 2, 9)).astype(np.float32), rng.normal(size=(2, 3, 10, 10)).astype(np.float32)
    with reference.numpy_forward():
        want = zoo(seq, img)
    got = run_graph(tracing.trace(zoo, dummy_input=(seq, img)), seq, img)
    for g, w in zip(got, want):
        assert_close(g, w)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------

class Scale(nn.Module):
    """A layer with its own parameter and no known type: its computation cannot be recorded."""

    def __init__(self):
        super().__init__()
        self.register_parameter("alpha", np.ones(1, np.float32))

    def forward(self, x):
        return x * self.alpha


@pytest.mark.parametrize("model, shape, error, pattern", [
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(4, 8, 3)), (1, 3, 9, 9), ValueError,
     r"'1' \(Conv2d\) expects 4 input channels, got 8"),
    (nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(6)), (1, 3, 9, 9), ValueError,
     r"'1' \(BatchNorm2d\) expects 6 input channels, got 8"),
    (nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), (1, 3, 2, 2), ValueError,
     r"'1' \(Linear\) expects 10 input features, got 12"),
    (nn.Sequential(nn.Conv2d(3, 8, 5)), (1, 3, 4, 4), ValueError, r"'0' \(Conv2d\).*too small"),
    (nn.Sequential(nn.Conv2d(3, 8, 3)), (1, 3, 9), ValueError, r"'0' \(Conv2d\) expects a 4-D input"),
    (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")), (1, 3, 9, 9), NotImplementedError,
     r"'0' \(Conv2d\): padding_mode='reflect'"),
    (nn.Sequential(nn.Linear(4, 2)), (1, 3, 4), NotImplementedError, r"'0' \(Linear\) got a 3-D input.*Gemm"),
    (nn.Sequential(nn.AdaptiveAvgPool2d(3)), (1, 2, 7, 7), NotImplementedError, r"'0' \(AdaptiveAvgPool2d\)"),
    (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), (1, 2, 4, 4), NotImplementedError, "divisor_override"),
    (nn.Sequential(nn.BatchNorm2d(2, track_running_stats=False)), (1, 2, 4, 4), NotImplementedError,
     "track_running_stats=False"),
    (nn.Sequential(nn.Conv2d(1, 2, 1), Scale()), (1, 1, 2, 2), TypeError,
     r"cannot trace '1' \(Scale\).*Supported layers: .*Conv2d.*ReLU6"),
])
def test_clear_errors(model, shape, error, pattern):
    with pytest.raises(error, match=pattern):
        tracing.trace(model, shape)


def test_data_dependent_control_flow_is_refused():
    class Branch(nn.Module):
        def forward(self, x):
            return F.relu(x) if x else x

    class Loop(nn.Module):
        def forward(self, x):
            return F.cat([row for row in x], 0)

    with pytest.raises(TraceError, match=r"data-dependent control flow cannot be traced.*in the model \(Branch\)"):
        tracing.trace(Branch(), (1, 2))
    with pytest.raises(TraceError, match="data-dependent control flow cannot be traced"):
        tracing.trace(nn.Sequential(Loop()), (1, 2))


def test_invalid_operations():
    def run(fn, *shapes):
        class Op(nn.Module):
            def forward(self, *xs):
                return fn(*xs)
        return tracing.trace(Op(), list(shapes))

    with pytest.raises(TypeError, match="constant arrays cannot enter the graph"):
        run(lambda x: x + np.ones(2, np.float32), (1, 2))
    with pytest.raises(TypeError, match="constant arrays cannot enter the graph"):
        run(lambda x: np.ones(2, np.float32) * x, (1, 2))
    with pytest.raises(TypeError, match="has no data"):
        run(np.asarray, (1, 2))
    with pytest.raises(ValueError, match=r"cannot add values of shapes \[1, 2\] and \[1, 3\]"):
        run(lambda x, y: x + y, (1, 2), (1, 3))
    with pytest.raises(ValueError, match="cannot concatenate shapes"):
        run(lambda x, y: F.cat([x, y], 1), (1, 2, 3), (1, 2, 4))
    with pytest.raises(ValueError, match=r"shape \[5, -1\] is invalid"):
        run(lambda x: x.view(5, -1), (2, 3))
    with pytest.raises(NotImplementedError, match="only the spatial mean"):
        run(lambda x: x.mean(1), (1, 2, 3, 3))
    with pytest.raises(TypeError, match="forward must return a traced value"):
        run(lambda x: x.shape, (1, 2))


def test_layers_outside_the_model():
    class Inline(nn.Module):
        def __init__(self, layer):
            super().__init__()
            object.__setattr__(self, "hidden", layer)  # not registered as a child

        def forward(self, x):
            return self.hidden(x)

    with pytest.raises(ValueError, match="not a submodule of the traced model"):
        tracing.trace(Inline(nn.Conv2d(1, 1, 1)), (1, 1, 2, 2))
    desc = tracing.trace(Inline(nn.ReLU()), (1, 2))  # nothing to name: an operation node
    assert [(n.name, n.op, n.module) for n in desc.nodes] == [("relu", "Relu", None)]


def test_input_shape_arguments():
    model = nn.Sequential(nn.ReLU())
    with pytest.raises(TypeError, match="exactly one of"):
        tracing.trace(model)
    with pytest.raises(TypeError, match="exactly one of"):
        tracing.trace(model, (1, 2), dummy_input=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="positive ints"):
        tracing.trace(model, (1, 0))
    assert tracing.trace(model, [(1, 2)]).inputs == [("input", (1, 2))]


def test_failed_trace_leaves_model_unchanged():
    model = Net()
    model.bn.eval()

    def snapshot():
        return [(m, dict(vars(m)), dict(m._parameters), dict(m._buffers), dict(m._modules)) for m in model.modules()]

    before = snapshot()
    values = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"'fc' \(Linear\) expects 192 input features, got 300"):
        tracing.trace(model, (2, 3, 5, 5))  # fails at the last layer, after all others were recorded
    assert snapshot() == before  # same attributes, training flags, and array objects
    assert all(np.array_equal(v, values[k]) for k, v in model.state_dict().items())
    # the model still runs normally
    model.eval()
    x = np.ones((1, 3, 4, 4), np.float32)
    assert reference.run(model, x).shape == (1, 5)
