"""Chapter 1: draw the graph that minigrad records for a small expression, from minigrad itself.

    python docs/figures/computation_graph.py           # writes computation_graph.png

The picture is not drawn by hand: we build L = sum(tanh(w * x + b) * x) with
minigrad, then walk the graph from L backwards through `grad_fn` (the Function
that made a Tensor) and `grad_fn.inputs` (the Tensors that went into it), the
same links that Tensor.backward follows. Each node is placed in a column by its
depth (leaves at depth 0, an op one column right of its deepest input).
"""
from matplotlib.patches import FancyArrowPatch

from common import plt, save

import minigrad  # noqa: E402


def walk(output, leaf_names):
    """Nodes and edges of the graph that made `output`, found by following grad_fn.inputs."""
    nodes, edges, stack = {}, [], [output]
    while stack:
        t = stack.pop()
        if id(t) in nodes:
            continue
        if t.grad_fn is None:                          # a leaf: made by the user
            nodes[id(t)] = {"label": leaf_names.get(id(t), "tensor"), "leaf": True, "inputs": []}
            continue
        inputs = [i for i in t.grad_fn.inputs if i is not None]   # None: a constant, not recorded
        nodes[id(t)] = {"label": t.grad_fn.name, "leaf": False, "inputs": [id(i) for i in inputs]}
        for i in inputs:
            edges.append((id(i), id(t)))
            stack.append(i)
    return nodes, edges


def depths(nodes):
    """Leaves at depth 0; an op one more than its deepest input."""
    depth = {}

    def of(key):
        if key not in depth:
            inputs = nodes[key]["inputs"]
            depth[key] = 0 if not inputs else 1 + max(of(i) for i in inputs)
        return depth[key]

    for key in nodes:
        of(key)
    return depth


def main():
    x = minigrad.tensor([1.0, 2.0], requires_grad=True)
    w = minigrad.tensor([0.5, -0.3], requires_grad=True)
    b = minigrad.tensor([0.1, 0.2], requires_grad=True)
    L = ((w * x + b).tanh() * x).sum()
    nodes, edges = walk(L, {id(x): "x (leaf)", id(w): "w (leaf)", id(b): "b (leaf)"})
    depth = depths(nodes)

    columns = {}
    for key in sorted(nodes, key=lambda k: nodes[k]["label"]):
        columns.setdefault(depth[key], []).append(key)
    position = {}
    for d, keys in columns.items():
        for row, key in enumerate(keys):
            position[key] = (2.2 * d, -1.2 * row + 0.6 * (len(keys) - 1))

    figure, axes = plt.subplots(figsize=(8.5, 3.2))
    for source, target in edges:
        long_edge = depth[target] - depth[source] > 1    # bend it away from the ops in between
        bend = 0.25 if position[source][1] <= position[target][1] else -0.25
        axes.add_patch(FancyArrowPatch(position[source], position[target], arrowstyle="-|>",
                                       connectionstyle=f"arc3,rad={bend if long_edge else 0.0}",
                                       mutation_scale=14, shrinkA=28, shrinkB=28, color="#555555"))
    for key, node in nodes.items():
        colour = "#cfe8ff" if node["leaf"] else "#ffe0b3"
        label = node["label"] if node["leaf"] else f"{node['label']}\n(grad_fn)"
        axes.text(*position[key], label, ha="center", va="center", fontsize=10,
                  bbox=dict(boxstyle="round,pad=0.45", facecolor=colour, edgecolor="#333333"))
    axes.text(2.2 * max(depth.values()) + 0.9, position[id(L)][1], "L", fontsize=12, va="center")
    axes.set_xlim(-0.9, 2.2 * max(depth.values()) + 1.3)
    axes.set_ylim(-2.6, 1.9)
    axes.axis("off")
    axes.set_title("L = sum(tanh(w * x + b) * x): forward follows the arrows, backward walks them in reverse",
                   fontsize=10)
    save(figure, "computation_graph.png")


if __name__ == "__main__":
    main()
