"""Which Kafka offsets the predictor may commit, and where a (re)assigned partition is replayed from.

Pure bookkeeping, no Kafka client: the consumer's Kafka thread reports what it ingested and what
it was assigned, the decision thread reports the rounds it finished, and the ledger answers.
The rule it keeps is at least once: an offset is committed only when every record below it was
ingested *before* a decision round started whose status writes all succeeded, so a crash after
the commit loses no information a written floor did not already include.

A round's snapshot carries the ledger's epoch; any (re)assignment starts a new epoch, so a round
that straddled a rebalance commits nothing (its snapshot may name partitions owned by others
now) and the next round commits instead.

Replays re-read history on purpose (a restarted or newly assigned replica rebuilds its
histories from the window), so ingesting must stay separate from the *side effects* of a first
reading (the rejected counter, a dead-letter record, the rejection log line). `effects` is the
per-partition watermark below which those already happened, in this process or an earlier one
of the group: it travels with every commit as the offset's metadata (`effects_metadata`), is
read back on assignment (`effects_from_metadata`), and `first_reading` answers for each record.
A record is re-read for its history only; its side effects happen once. The committed offset is
a lower bound of the watermark (a committed record was ingested). After a crash (no final
commit), what was read since the last commit is at least once, as the decisions are.
"""
from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

Partition = Hashable  # kafka.TopicPartition in the service, anything hashable in tests


def replay_start(held: int | None, lookback: int | None, committed: int | None, end: int) -> int:
    """Where to start reading a partition just assigned.

    held: the offset up to which this replica already holds the partition's records in memory
    (kept across a rebalance that gave the partition back, e.g. a Kafka restart); lookback: the
    first offset inside the history window (None: no record that new); committed: the group's.
    Held history is continued where it ends (no replay of what is in memory); otherwise the
    history window is re-read, never starting after the committed offset (no gap).
    """
    window = end if lookback is None else lookback
    if held is not None and held <= end:  # (an offset past the end: the topic was re-created)
        return max(held, window)
    return window if committed is None else min(window, committed)


def effects_metadata(effects: int) -> str:
    """The commit metadata that carries the side-effect watermark (Kafka stores it with the offset)."""
    return json.dumps({"effects": effects})


def effects_from_metadata(committed: int | None, metadata: str | None) -> int | None:
    """The watermark an earlier process of the group left: the larger of its committed offset and
    the `effects` in the metadata; metadata that is absent or not ours counts as none."""
    try:
        recorded = json.loads(metadata or "{}").get("effects")
    except (ValueError, AttributeError):
        recorded = None
    known = [o for o in (committed, recorded) if isinstance(o, int) and not isinstance(o, bool) and o >= 0]
    return max(known, default=None)


@dataclass(frozen=True)
class RoundSnapshot:
    epoch: int
    fed: dict[Partition, int]


@dataclass
class OffsetLedger:
    epoch: int = 0
    fed: dict[Partition, int] = field(default_factory=dict)  # next offset not yet ingested
    catch_up: dict[Partition, int] = field(default_factory=dict)  # partition end at assignment
    decided: dict[Partition, int] = field(default_factory=dict)  # safe to commit
    committed: dict[Partition, int] = field(default_factory=dict)  # committed by this replica
    effects: dict[Partition, int] = field(default_factory=dict)  # side effects done below this offset
    effects_committed: dict[Partition, int] = field(default_factory=dict)  # the watermark last committed

    def assigned(self, starts: Mapping[Partition, int], ends: Mapping[Partition, int],
                 effects: Mapping[Partition, int | None] | None = None) -> None:
        """A new assignment: forget every other partition, replay these from `starts` up to `ends`.

        `effects`: the group's side-effect watermark per partition (`effects_from_metadata`); a
        partition this replica held keeps the larger of that and its own."""
        self.epoch += 1
        self.fed = dict(starts)
        self.catch_up = dict(ends)
        self.decided = {tp: o for tp, o in self.decided.items() if tp in starts}
        self.committed = {tp: o for tp, o in self.committed.items() if tp in starts}
        group = {tp: o for tp, o in (effects or {}).items() if o is not None}
        self.effects = {tp: max(self.effects.get(tp, 0), group.get(tp, 0)) for tp in starts
                        if tp in self.effects or tp in group}
        self.effects_committed = {tp: o for tp, o in self.effects_committed.items() if tp in starts}

    def first_reading(self, partition: Partition, offset: int) -> bool:
        """True once per record: its side effects are due now; False on every later reading (replay)."""
        if offset < self.effects.get(partition, 0):
            return False
        self.effects[partition] = offset + 1
        return True

    def ingested(self, positions: Mapping[Partition, int | None]) -> None:
        """Positions after a poll whose records were all ingested (None: position unknown)."""
        for tp, offset in positions.items():
            if offset is not None and tp in self.catch_up:
                self.fed[tp] = offset

    def ready(self) -> bool:
        """Caught up with what each assigned partition held at assignment: decisions may start."""
        return bool(self.catch_up) and all(self.fed.get(tp, -1) >= end for tp, end in self.catch_up.items())

    def round_started(self) -> RoundSnapshot:
        return RoundSnapshot(self.epoch, dict(self.fed))

    def round_written(self, snapshot: RoundSnapshot) -> None:
        """Every write of the round that started at `snapshot` succeeded (or was not needed)."""
        if snapshot.epoch != self.epoch:
            return
        for tp, offset in snapshot.fed.items():
            self.decided[tp] = max(offset, self.decided.get(tp, offset))

    def to_commit(self, assignment: Iterable[Partition], effects_too: bool = False) -> dict[Partition, tuple[int, int]]:
        """(offset, side-effect watermark) per assigned partition whose decided offset moved past
        what was committed; with `effects_too` (side effects happened since, or the replica is
        stopping) also where only the watermark moved, at the offset already decided."""
        out = {}
        for tp in assignment:
            if tp not in self.decided:
                continue
            offset, effects = self.decided[tp], self.effects.get(tp, 0)
            moved = offset > self.committed.get(tp, -1)
            if moved or (effects_too and effects > self.effects_committed.get(tp, -1)):
                out[tp] = (offset, effects)
        return out

    def was_committed(self, commits: Mapping[Partition, tuple[int, int]]) -> None:
        for tp, (offset, effects) in commits.items():
            self.committed[tp] = offset
            self.effects_committed[tp] = effects
