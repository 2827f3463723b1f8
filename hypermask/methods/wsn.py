"""WSN: H. Kang, R. J. L. Mina, S. R. H. Madjid, J. Yoon, M. Hasegawa-Johnson, S. J. Hwang,
C. D. Yoo, "Forget-free Continual Learning with Winning Subnetworks", ICML 2022.

1. One set of trunk weights W and one learned score per weight (initialised as WSN's official
   code does, kaiming-uniform with a = sqrt(5); github.com/ihaeyong/WSN). For task t, per tensor,
   the binary mask m_t keeps the top-c% of |scores| (`wsn.capacity`); the forward pass uses
   W * m_t; the scores get the straight-through gradient (hypermask.methods.shared.supermask). The
   scores carry over from task to task (one set, as in the official code).
2. Weights already used by an earlier task (M_{t-1}, the union of earlier masks) receive no
   update: their gradient is zeroed (a hook on W, as the official code's
   `param.grad *= 1 - consolidated_mask`), and with a fresh Adam per task a weight whose
   gradient is always zero never moves, so it stays bit-identical. Only weights selected for
   the first time are trained; after the task M_t = M_{t-1} OR m_t.
3. m_t is stored bit-packed (one bit per weight); task t is evaluated with W * m_t, so every
   earlier task's function is unchanged and BWT is exactly 0 by construction.

Heads (the official code: `networks/mlp.py`, whose `last` is a ModuleList of one dense
nn.Linear per task, selected by the task id, and `main_wsn_pmnist.py`, which trains only the
current task's head, `curr_head_keys`): one dense, unmasked output head per task
(`TargetNet.n_heads`), trained only while its task trains (the other heads' outputs are not
in the loss, so their gradient is zero and a fresh Adam leaves them bit-identical). Only the
trunk is masked: every weight *and bias* tensor below the head (the official MLPs have no
biases). Batch norm's affine parameters stay at identity (not trained: a shared trained one
would make earlier tasks drift). The paper's further mask compression (Huffman coding) is not
applied: memory counts the packed bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from hypermask.methods.shared.supermask import SupermaskMethod

if TYPE_CHECKING:
    from hypermask.config import ExperimentConfig
    from hypermask.nets import TargetNet


class WSN(SupermaskMethod):
    """WSN behind the method contract (hypermask.methods.Method)."""

    def __init__(self, cfg: ExperimentConfig, target: TargetNet):
        trunk = [n for n in target.masked_names if n not in target.head_names()]
        super().__init__(target, trunk, cfg.wsn.capacity, cfg.data.n_tasks)
        params = dict(target.named_parameters())
        for i, s in enumerate(self.shapes):
            # 1 - M_{t-1}: rebuilt from the stored masks at each task's start (not in checkpoints)
            self.register_buffer(f"free_{i}", torch.ones(s), persistent=False)
            params[self.names[i]].register_hook(self._freeze_hook(i))

    def _freeze_hook(self, i: int):
        return lambda g: g * getattr(self, f"free_{i}")

    @torch.no_grad()
    def start_task(self, t: int, n_iterations: int) -> None:
        """free = 1 - M_{t-1}, from the stored masks of tasks 0..t-1."""
        for i in range(len(self.names)):
            used = torch.zeros(self.shapes[i], dtype=torch.bool, device=self.scores[i].device)
            for j in range(t):
                used |= self.stored_mask(j, i).bool()
            getattr(self, f"free_{i}").copy_((~used).float())
