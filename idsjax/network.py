"""The static network graph: node positions, types, adjacency and the local-view tables (spec §1).

Everything here is plain NumPy computed once per (layers, servers, connected) triple: it becomes
constants inside the jitted transition.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

EMPTY, START, SERVER, DATA = 0, 1, 2, 3

# The offsets of the local attacker view, slot by slot: the cell above, the cell below (spec §6.3).
LOCAL_VIEW_OFFSETS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0))


@dataclasses.dataclass(frozen=True, eq=False)
class Network:
    """Grid of `rows × cols` cells; nodes are the non-empty cells in row-major order.

    Node 0 is always the data node and node `N-1` the start node (spec §1.2).
    """

    layers: int
    servers_per_layer: int
    connected_layers: bool
    rows: int
    cols: int
    num_nodes: int
    node_row: np.ndarray  # int32[N]
    node_col: np.ndarray  # int32[N]
    node_type: np.ndarray  # int32[N]
    cell_node: np.ndarray  # int32[R, C], -1 on empty cells
    grid_adjacency: np.ndarray  # int32[R*C, R*C], the reference's matrix
    adjacency: np.ndarray  # bool[N, N], node-indexed
    max_neighbors: int  # the reference's (quirky) count over the first N grid cells (Q14)

    @property
    def start_node(self) -> int:
        return self.num_nodes - 1

    @property
    def data_node(self) -> int:
        return 0

    @property
    def defendable(self) -> np.ndarray:
        """bool[N]: servers and the data node, what the reference calls a legal defense target."""
        return np.isin(self.node_type, (SERVER, DATA))

    @functools.cached_property
    def attack_reachable(self) -> np.ndarray:
        """bool[N, N]: `[p, n]` iff a positionally legal attack from node `p` may target node `n` (§1.7)."""
        upward_or_level = self.node_row[None, :] <= self.node_row[:, None]
        return self.adjacency & upward_or_level & ~np.eye(self.num_nodes, dtype=bool)

    @functools.cached_property
    def row_prefix_count(self) -> np.ndarray:
        """int32[R]: number of non-empty cells per row, i.e. the reference's `get_row_ids` length (§1.6)."""
        return (self.cell_node >= 0).sum(axis=1).astype(np.int32)

    def local_view_slots(self, num_slots: int) -> np.ndarray:
        """int32[N, slots]: the node shown in each local-view slot for each attacker node, or -1 (§6.3, Q15)."""
        slots = np.full((self.num_nodes, num_slots), -1, dtype=np.int32)
        for p in range(self.num_nodes):
            for k, (dr, dc) in enumerate(LOCAL_VIEW_OFFSETS[:num_slots]):
                r, c = self.node_row[p] + dr, self.node_col[p] + dc
                if not (0 <= r < self.rows and 0 <= c < self.cols):
                    continue
                q = self.cell_node[r, c]
                if q >= 0 and q != p and self.adjacency[p, q] and self.node_row[q] <= self.node_row[p]:
                    slots[p, k] = q
        return slots


@functools.cache
def build_network(layers: int, servers_per_layer: int, connected_layers: bool) -> Network:
    rows, cols = layers + 2, servers_per_layer
    center = cols // 2
    cell_type = np.full((rows, cols), SERVER, dtype=np.int32)
    cell_type[0, :] = EMPTY
    cell_type[rows - 1, :] = EMPTY
    cell_type[0, center] = DATA
    cell_type[rows - 1, center] = START

    cell_node = np.full((rows, cols), -1, dtype=np.int32)
    positions = [(r, c) for r in range(rows) for c in range(cols) if cell_type[r, c] != EMPTY]
    for n, (r, c) in enumerate(positions):
        cell_node[r, c] = n

    # The reference's rules, first match wins, evaluated for the first cell of each ordered pair (§1.3).
    g = rows * cols
    grid_adj = np.zeros((g, g), dtype=np.int32)
    for i in range(g):
        r1, c1 = divmod(i, cols)
        for j in range(g):
            r2, c2 = divmod(j, cols)
            linked = False
            if r1 == 0:
                linked = r2 == 1 and c1 == center
            elif r1 == rows - 1:
                linked = r2 == rows - 2 and c1 == center
            elif r2 == r1 + 1 and c1 == c2 and r2 != rows - 1:
                linked = True
            elif connected_layers and r2 == r1 and c1 == c2 + 1:
                linked = True
            if linked:
                grid_adj[i, j] = grid_adj[j, i] = 1

    num_nodes = len(positions)
    node_row = np.array([r for r, _ in positions], dtype=np.int32)
    node_col = np.array([c for _, c in positions], dtype=np.int32)
    grid_index = node_row * cols + node_col
    adjacency = grid_adj[np.ix_(grid_index, grid_index)].astype(bool)
    max_neighbors = int(grid_adj[:num_nodes].sum(axis=1).max())  # over grid cells 0…N-1, as the reference
    return Network(
        layers=layers,
        servers_per_layer=servers_per_layer,
        connected_layers=connected_layers,
        rows=rows,
        cols=cols,
        num_nodes=num_nodes,
        node_row=node_row,
        node_col=node_col,
        node_type=cell_type[node_row, node_col],
        cell_node=cell_node,
        grid_adjacency=grid_adj,
        adjacency=adjacency,
        max_neighbors=max_neighbors,
    )
