"""From tokenized conversations to training rows, their order, and padded micro-batches.

The data is an endless stream: epoch ``e`` visits every row once in an order drawn from
``(seed, e)``, and optimizer step ``s`` takes the next ``batch_size * grad_accum * processes``
rows of the stream. A position in that stream is all a checkpoint needs to resume the data
exactly, and every process knows every row of a step, so each can count the step's target tokens
(the loss denominator) without talking to the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import torch

from astra_training.assistant_mask import TokenizedConversation

GROUP_WINDOW = 16  # batches sorted together by length (group_by_length)
Row = tuple[int, ...]  # indices of the conversations laid end to end in one sequence


def make_rows(
    examples: Sequence[TokenizedConversation], max_length: int, *, packing: bool
) -> list[Row]:
    """One row per conversation, or (``packing``) conversations packed first-fit-decreasing
    into rows of at most ``max_length`` tokens."""
    if not packing:
        return [(i,) for i in range(len(examples))]
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        need = len(examples[i].input_ids)
        for r, free in enumerate(room):
            if need <= free:
                rows[r].append(i)
                room[r] -= need
                break
        else:
            rows.append([i])
            room.append(max_length - need)
    return [tuple(r) for r in rows]


class RowStream:
    """Row index at each position of the endless, reshuffled-every-epoch stream.

    With ``lengths`` and ``batch``, each window of ``GROUP_WINDOW`` batches of the shuffled
    order is sorted by length and cut into batches, which are shuffled again: a step's rows are
    of similar length, so little of a padded micro-batch is padding, and the order is still
    drawn from ``(seed, epoch)`` alone."""

    def __init__(
        self, rows: int, seed: int, *, lengths: Sequence[int] | None = None, batch: int = 0
    ) -> None:
        if rows <= 0:
            raise ValueError("no training rows")
        if lengths is not None and len(lengths) != rows:
            raise ValueError(f"{len(lengths)} lengths for {rows} rows")
        self.rows = rows
        self.seed = seed
        self.lengths = lengths
        self.batch = batch
        self._epoch = -1
        self._order: list[int] = []

    def order(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.rows, generator=gen).tolist()
            if self.lengths is not None and self.batch > 1:
                order = self._grouped(order, gen)
            self._order = order
            self._epoch = epoch
        return self._order

    def _grouped(self, order: list[int], gen: torch.Generator) -> list[int]:
        assert self.lengths is not None
        lengths, size = self.lengths, self.batch
        out: list[int] = []
        window = size * GROUP_WINDOW
        for start in range(0, len(order), window):
            part = sorted(order[start : start + window], key=lambda i: -lengths[i])
            chunks = [part[i : i + size] for i in range(0, len(part), size)]
            for c in torch.randperm(len(chunks), generator=gen).tolist():
                out.extend(chunks[c])
        return out

    def take(self, start: int, count: int) -> list[int]:
        out = []
        for position in range(start, start + count):
            epoch, offset = divmod(position, self.rows)
            out.append(self.order(epoch)[offset])
        return out


@attrs.frozen
class Batch:
    """A padded micro-batch. ``targets[b, t]`` is 1 where token ``t`` is trained on;
    ``attention_mask`` is ``None`` for packed rows (``position_ids`` restart per conversation
    and the model keeps attention inside each)."""

    input_ids: torch.Tensor
    targets: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    lengths: tuple[int, ...]

    @property
    def tokens(self) -> int:
        return sum(self.lengths)

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.input_ids.to(device),
            self.targets.to(device),
            self.position_ids.to(device),
            None if self.attention_mask is None else self.attention_mask.to(device),
            self.lengths,
        )


def row_targets(row: Row, examples: Sequence[TokenizedConversation]) -> float:
    """Loss weight of ``row``'s tokens (the first token of a row predicts nothing)."""
    mask = [m for i in row for m in examples[i].assistant_mask]
    return sum(mask[1:])


def collate(
    rows: Sequence[Row],
    examples: Sequence[TokenizedConversation],
    pad_id: int,
    *,
    packed: bool,
) -> Batch:
    """Right-padded tensors of ``rows``."""
    seqs = [[t for i in row for t in examples[i].input_ids] for row in rows]
    masks = [[m for i in row for m in examples[i].assistant_mask] for row in rows]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.zeros((len(rows), width), dtype=torch.float32)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for b, (seq, mask, row) in enumerate(zip(seqs, masks, rows, strict=True)):
        n = len(seq)
        ids[b, :n] = torch.tensor(seq, dtype=torch.long)
        targets[b, :n] = torch.tensor(mask, dtype=torch.float32)
        attention[b, :n] = 1
        start = 0
        for i in row:  # positions restart with every packed conversation
            k = len(examples[i].input_ids)
            positions[b, start : start + k] = torch.arange(k)
            start += k
        positions[b, n:] = torch.arange(width - n)  # padding: its own "sequence"
    return Batch(ids, targets, positions, None if packed else attention, tuple(map(len, seqs)))
