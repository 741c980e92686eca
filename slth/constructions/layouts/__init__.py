"""Layouts: how a target layer maps onto source layers.

A layout says which source layers a target layer becomes, how the subset-sum
instances of the layer are gathered from the source and how the chosen subsets
scatter back to kept entries. The realisation loop
(:mod:`slth.constructions._realise`) runs any construction built on one.

=====================  ==========================================================
module                 layout
=====================  ==========================================================
:mod:`.pair_dense`     two source layers per dense target layer: block-diagonal
                       first layer, ``2n`` hidden units per input coordinate split
                       by sign, constant units for biases (Pensia et al. 2020;
                       Malach et al.'s per-weight blocks are this layout applied
                       to each output neuron's own hidden units).
=====================  ==========================================================
"""

from . import pair_dense

__all__ = ["pair_dense"]
