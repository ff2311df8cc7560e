"""Committing a staged run into silver: partition swaps, quarantine moves, ledger, in that order.

A journal names partitions by their path under ``silver/`` (``<dataset>/<column>=<value>``:
``stock_prices/trade_date=D`` or ``stock_prices_daily/trade_month=M``); the same steps serve both
datasets. Each partition ``P`` is swapped in with two renames (atomic on a local disk and on HDFS):

1. ``silver/P``  →  ``<staging>/old/P``   (only if it exists)
2. ``<staging>/P``  →  ``silver/P``
3. delete ``<staging>/old/P``

A partition the journal removes (the layout migration empties a day that held only daily bars)
is renamed aside and deleted the same way.

A reader listing the dataset sees the old partition or the new one, never a mix of files (between
steps 1 and 2 the date is briefly absent). Which steps are done is visible from which of the three
directories exist, so ``swap_partition`` can be replayed any number of times after a kill.

On S3 (no rename, ``LakeFS.atomic_rename`` False) the swap is a redoable copy instead:
delete ``final``, copy ``staged`` to ``final``, write the marker ``<staged>.copied``, delete
``staged``, delete the marker. A replay before the marker copies again from the complete
``staged``; a replay after it only finishes the deletes. Readers may see a partition partly
copied during the swap, so on S3 downstream steps read silver only after the clean step ends.

Test-only fault injection: ``STOCKPIPE_FAULT_CLEAN=<point>`` makes the process exit with code 137
(as if SIGKILLed) at ``after_staging`` (everything staged, no journal yet), ``after_journal``
(journal written, nothing swapped), ``mid_swap`` (the first partition swapped in, the others not
yet; only when a run rewrites two or more partitions), or ``before_ledger`` (silver and quarantine
in place, ledger not yet updated).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from stockpipe.clean.state import Journal, delete_journal, load_ledger, save_ledger, write_layout_version
from stockpipe.faults import fault_at
from stockpipe.lake.fs import LakeFS

FAULT_GROUP = "CLEAN"  # STOCKPIPE_FAULT_CLEAN=<point>
COPIED_SUFFIX = ".copied"
FAULT_POINTS = ("after_staging", "after_journal", "mid_swap", "before_ledger")


def attempt_staging(staging_root: str, name: str) -> str:
    """A staging folder for this attempt alone: ``<staging_root>/<name>-<8 random hex digits>``.

    Never the same folder twice, even for a rerun of the same bronze files (whose ``name``, the
    run id, is the same): a Spark Connect server keeps running the job a killed client had sent
    (measured: a killed client's job ran on for 30 s and more), so a killed attempt's write can
    commit files into its staging folder after the next attempt has started. Only the folder the
    journal names is swapped in, so those late files never reach silver; the next run's cleanup
    of ``_staging`` deletes them.
    """
    return f"{staging_root}/{name}-{secrets.token_hex(4)}"


def maybe_fault(point: str) -> None:
    """Die like a SIGKILL at ``point`` when ``STOCKPIPE_FAULT_CLEAN`` names it (test hook)."""
    fault_at(FAULT_GROUP, point)


def swap_partition(fs: LakeFS, *, staged: str, final: str, aside: str) -> bool:
    """Bring ``staged`` in place of ``final`` (idempotent; returns True if anything moved)."""
    if not fs.atomic_rename:
        return _swap_by_copy(fs, staged=staged, final=final)
    if not fs.exists(staged):  # step 2 already done: only the old copy may remain
        fs.delete(aside)
        return False
    if fs.exists(final):
        if fs.exists(aside):  # an earlier attempt left an old copy: it is stale
            fs.delete(aside)
        fs.rename(final, aside)
    fs.rename(staged, final)
    fs.delete(aside)
    return True


def remove_partition(fs: LakeFS, *, final: str, aside: str) -> None:
    """Take ``final`` out of silver (idempotent): rename it aside, then delete it."""
    if not fs.atomic_rename:
        fs.delete(final)
        return
    if fs.exists(final):
        if fs.exists(aside):
            fs.delete(aside)
        fs.rename(final, aside)
    fs.delete(aside)


def _swap_by_copy(fs: LakeFS, *, staged: str, final: str) -> bool:
    """``swap_partition`` where rename is copy + delete (S3): redoable from the staged copy."""
    marker = f"{staged}{COPIED_SUFFIX}"
    if not fs.exists(staged):
        fs.delete(marker)
        return False
    if not fs.exists(marker):
        fs.delete(final)
        fs.copy_tree(staged, final)
        fs.write_bytes(marker, b"")
    fs.delete(staged)
    fs.delete(marker)
    return True


def apply_journal(
    fs: LakeFS,
    journal: Journal,
    *,
    silver_root: str,
    state_dir: str,
    on_swap: Callable[[int, int], None] | None = None,
) -> None:
    """Finish a run's commit from its journal; every step is idempotent.

    ``silver_root`` is ``<lake>/silver``; the journal's partitions are paths under it.
    """
    steps = [(part, False) for part in journal.partitions]
    steps += [(part, True) for part in journal.removed_partitions]
    total = len(steps)
    for i, (part, remove) in enumerate(steps, start=1):
        final, aside = f"{silver_root}/{part}", f"{journal.staging}/old/{part}"
        if remove:
            remove_partition(fs, final=final, aside=aside)
        else:
            swap_partition(fs, staged=f"{journal.staging}/{part}", final=final, aside=aside)
        if i == 1 and total > 1:
            maybe_fault("mid_swap")
        if on_swap:
            on_swap(i, total)
    if journal.layout_version is not None:
        write_layout_version(fs, state_dir, journal.layout_version)
    for src, dst in journal.quarantine_moves:
        if fs.exists(src):
            if fs.exists(dst):
                fs.delete(dst)
            fs.rename(src, dst)
    for uri in journal.quarantine_deletes:  # a quarantine replay admitted every row of the file
        fs.delete(uri)
    maybe_fault("before_ledger")
    ledger = load_ledger(fs, state_dir)
    if not set(journal.ledger_add) <= set(ledger.files):
        ledger.files.update(journal.ledger_add)
        save_ledger(fs, state_dir, ledger)
    delete_journal(fs, state_dir)
    fs.delete(journal.staging)
