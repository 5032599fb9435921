"""Which Kafka offsets the predictor may commit, and where a (re)assigned partition is replayed from.

Pure bookkeeping, no Kafka client: the consumer's Kafka thread reports what it ingested and what
it was assigned, the decision thread reports the rounds it finished, and the ledger answers.
The rule it keeps is at least once: an offset is committed only when every record below it was
ingested *before* a decision round started whose status writes all succeeded, so a crash after
the commit loses no information a written floor did not already include.

A round's snapshot carries the ledger's epoch; any (re)assignment starts a new epoch, so a round
that straddled a rebalance commits nothing (its snapshot may name partitions owned by others
now) and the next round commits instead.
"""
from __future__ import annotations

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

    def assigned(self, starts: Mapping[Partition, int], ends: Mapping[Partition, int]) -> None:
        """A new assignment: forget every other partition, replay these from `starts` up to `ends`."""
        self.epoch += 1
        self.fed = dict(starts)
        self.catch_up = dict(ends)
        self.decided = {tp: o for tp, o in self.decided.items() if tp in starts}
        self.committed = {tp: o for tp, o in self.committed.items() if tp in starts}

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

    def to_commit(self, assignment: Iterable[Partition]) -> dict[Partition, int]:
        """Decided offsets of currently assigned partitions that move past what was committed."""
        return {tp: self.decided[tp] for tp in assignment
                if tp in self.decided and self.decided[tp] > self.committed.get(tp, -1)}

    def was_committed(self, offsets: Mapping[Partition, int]) -> None:
        self.committed.update(offsets)
