"""Writes the fuzz seed corpus (bench/fuzz/corpus/): tiny ONNX models covering the
loader's paths — float tensors in float_data and raw_data, integer constants,
every attribute type, BN fold / CLS pairs and triplets, ReLU6 as Clip, IR 3
initializers listed as inputs, a custom-domain op — plus truncated and
bit-flipped variants. Deterministic; run from the repository root:
    python3 bench/fuzz/make_seeds.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
rng = np.random.default_rng(0)


def weights(name, *shape, raw=True):
    values = rng.standard_normal(shape).astype(np.float32)
    if raw:
        return numpy_helper.from_array(values, name)
    return helper.make_tensor(name, TensorProto.FLOAT, shape, values.flatten().tolist())


def bn(prefix, channels):
    return [weights(f"{prefix}.{k}", channels) for k in ("scale", "bias", "mean")] + [
        numpy_helper.from_array(rng.uniform(0.5, 2, channels).astype(np.float32), f"{prefix}.var")]


def model(nodes, inits, inputs, outputs, opset=13, ir=8, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(graph, opset_imports=imports, producer_name="seed")
    m.ir_version = ir
    return m


def image(name, c, hw=4):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, c, hw, hw])


def conv_bn_pair():
    """conv -> BN -> Relu -> conv: BN fold, CLS pair, high-bias fold."""
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["n1"],
                         name="bn1", epsilon=1e-5),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", kernel_shape=[1, 1]),
    ]
    inits = [weights("w1", 4, 2, 3, 3), weights("b1", 4, raw=False), weights("w2", 3, 4, 1, 1)] + bn("bn", 4)
    return model(nodes, inits, [image("x", 2)], [image("y", 3)])


def relu6_triplet():
    """conv -> Clip(0, 6) -> depthwise conv -> Relu -> conv: a CLS triplet."""
    lo = numpy_helper.from_array(np.array(0, np.float32), "lo")
    hi = numpy_helper.from_array(np.array(6, np.float32), "hi")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1"),
        helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", "dw", "bdw"], ["c2"], name="dw", group=4, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["y"], name="conv3"),
    ]
    inits = [weights("w1", 4, 3, 1, 1), weights("b1", 4), weights("dw", 4, 1, 3, 3), weights("bdw", 4),
             weights("w3", 2, 4, 1, 1), weights("b3", 2), lo, hi]
    return model(nodes, inits, [image("x", 3)], [image("y", 2)], opset=17)


def gemm_reshape():
    """Constant shape -> Reshape -> Gemm -> Relu -> MatMul + Add, Flatten, Softmax."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1, -1])
    nodes = [
        helper.make_node("Constant", [], ["s"], name="shape_const", value=shape),
        helper.make_node("Reshape", ["x", "s"], ["f"], name="reshape"),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["g1"], name="fc1", transB=1, alpha=1.0),
        helper.make_node("Relu", ["g1"], ["r1"], name="relu"),
        helper.make_node("MatMul", ["r1", "w2"], ["m2"], name="fc2"),
        helper.make_node("Add", ["m2", "b2"], ["a2"], name="add"),
        helper.make_node("Flatten", ["a2"], ["fl"], name="flatten", axis=1),
        helper.make_node("Softmax", ["fl"], ["y"], name="softmax", axis=-1),
    ]
    inits = [weights("w1", 5, 8), weights("b1", 5), weights("w2", 5, 3), weights("b2", 3)]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    return model(nodes, inits, [x], [y], opset=11)


def odd_corners():
    """IR 3 (initializers listed as inputs), int32/uint8/bool tensors, every
    attribute type, an unnamed node, a custom-domain op, ConvTranspose, a BN
    before a conv, pooling, a sparse initializer."""
    ints = numpy_helper.from_array(np.array([1, -2, 3], np.int32), "i32")
    bytes_ = numpy_helper.from_array(np.array([1, 255], np.uint8), "u8")
    flags = numpy_helper.from_array(np.array([True, False]), "flags")
    wt = weights("wt", 2, 2, 2, 2)
    nodes = [
        helper.make_node("BatchNormalization", ["x", "bn.scale", "bn.bias", "bn.mean", "bn.var"], ["n"],
                         name="bn0"),
        helper.make_node("Conv", ["n", "w"], ["c"], name="", strides=[1, 1], dilations=[1, 1],
                         auto_pad="NOTSET"),
        helper.make_node("ConvTranspose", ["c", "wt"], ["t"], name="up", strides=[2, 2]),
        helper.make_node("MaxPool", ["t"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gap"], name="gap"),
        helper.make_node("Mystery", ["gap"], ["y"], name="custom", domain="com.example",
                         floats=[0.5, 1.5], ints=[1, 2], text="hello", t=weights("attr_t", 2)),
    ]
    inits = [weights("w", 2, 2, 1, 1), wt, ints, bytes_, flags] + bn("bn", 2)
    sparse = helper.make_sparse_tensor(numpy_helper.from_array(np.array([1.0], np.float32), "sp"),
                                       numpy_helper.from_array(np.array([0], np.int64), "sp_idx"), [2])
    graph_inputs = [image("x", 2)] + [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                                      for t in inits]
    m = model(nodes, inits, graph_inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
              opset=9, ir=3, domains=("com.example",))
    m.graph.sparse_initializer.append(sparse)
    return m


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, build in [("conv_bn_pair", conv_bn_pair), ("relu6_triplet", relu6_triplet),
                        ("gemm_reshape", gemm_reshape), ("odd_corners", odd_corners)]:
        data = build().SerializeToString()
        write(f"{name}.onnx", data)
        write(f"{name}.truncated.onnx", data[: len(data) // 2])
        flipped = bytearray(data)
        for k in range(7, len(flipped), 97):
            flipped[k] ^= 0x10
        write(f"{name}.flipped.onnx", bytes(flipped))
    write("empty_graph.onnx", model([], [], [], []).SerializeToString())


if __name__ == "__main__":
    main()
