package dev.tessera.stream;

import java.util.Arrays;

/**
 * One window's buckets of one key, by leave boundary, oldest first, in parallel arrays: bucket k's
 * boundary at {@code leaves[p]}, its count cells at {@code counts[p * width + slot]} and its sum cells
 * at {@code sums[p * width + slot]} (null at count slots, and until a sum slot adds something), where
 * p = head + k.
 *
 * Why not a TreeMap of Cells: buckets are most of a job's heap (a key keeps one per minute of its
 * longest window), and a young collection's cost goes by the objects it copies. A map entry, its
 * boxed key, a Cells and its two arrays were six objects a bucket; here a bucket adds none but its
 * sums, and the arrays grow by doubling up to a limit. Buckets arrive almost in order, so a new one
 * is appended; the oldest leave first, so dropping moves {@code head}.
 *
 * The limit: a window of length w and granularity g holds at most ceil(w / g) + 1 buckets of a key
 * at once (their leave boundaries lie after the key's last as_of, which is at or after its newest
 * event, and at or before ceil_g(newest + w)); {@link #limit} adds room so that moving the live run
 * to the front is rare. By doubling alone a 1h window by the minute (61 buckets) took arrays of 128,
 * twice what it holds, for every key. Past the limit (should a caller hold more) it doubles again.
 */
final class Buckets {
    private static final long[] NONE = new long[0];

    int width = -1;  // slots per bucket: set by the first bucket
    long[] leaves = NONE;
    long[] counts = NONE;
    Exact[] sums;  // null while no bucket has a sum
    int head;
    int size;

    int size() {
        return size;
    }

    /** The array position of the oldest bucket. */
    int oldest() {
        return head;
    }

    long leave(int p) {
        return leaves[p];
    }

    long count(int p, int slot) {
        return counts[p * width + slot];
    }

    Exact sum(int p, int slot) {
        return sums == null ? null : sums[p * width + slot];
    }

    void addCount(int p, int slot) {
        counts[p * width + slot]++;
    }

    void addSum(int p, int slot, Exact v) {
        if (sums == null) {
            sums = new Exact[leaves.length * width];
        }
        int i = p * width + slot;
        if (sums[i] == null) {
            sums[i] = new Exact();
        }
        sums[i].add(v);
    }

    /**
     * The array position of the bucket leaving at {@code leave}, created empty (with {@code slots}
     * slots) if there is none, which {@link #size()} then shows. A position holds until the next
     * call that creates a bucket.
     */
    int find(long leave, int slots, int limit) {
        if (width < 0) {
            width = slots;
        }
        int end = head + size;
        int at;
        if (size == 0 || leaves[end - 1] < leave) {
            at = end;  // the common case: a later minute than any held
        } else {
            int found = Arrays.binarySearch(leaves, head, end, leave);
            if (found >= 0) {
                return found;
            }
            at = -found - 1;
        }
        if (end == leaves.length) {
            at -= head;
            makeRoom(limit);
            at += head;
            end = head + size;
        }
        if (at < end) {  // an out-of-order minute: shift the later ones up by one
            System.arraycopy(leaves, at, leaves, at + 1, end - at);
            System.arraycopy(counts, at * width, counts, (at + 1) * width, (end - at) * width);
            if (sums != null) {
                System.arraycopy(sums, at * width, sums, (at + 1) * width, (end - at) * width);
            }
        }
        leaves[at] = leave;
        Arrays.fill(counts, at * width, (at + 1) * width, 0L);
        if (sums != null) {
            Arrays.fill(sums, at * width, (at + 1) * width, null);
        }
        size++;
        return at;
    }

    /** Drops the oldest bucket. */
    void dropOldest() {
        if (sums != null) {
            Arrays.fill(sums, head * width, (head + 1) * width, null);  // no garbage kept reachable
        }
        head++;
        size--;
        if (size == 0) {
            head = 0;
        }
    }

    /** The capacity for a window that holds at most {@code held} buckets at once: a quarter more (at
     * least 4) so that the live run moves to the front once every so many buckets, not every one. */
    static int limit(long held) {
        long room = held + Math.max(4, held / 4);
        return (int) Math.min(Integer.MAX_VALUE - 8, room);
    }

    /** Room for one more at the end: the live run moved to the front, into arrays twice as large
     * (but not past {@code limit} while what is held fits it) when it fills more than half of them. */
    private void makeRoom(int limit) {
        int capacity = leaves.length;
        if (size + 1 > capacity / 2) {
            int doubled = Math.max(4, capacity * 2);
            capacity = size + 1 <= limit ? Math.max(capacity, Math.min(doubled, limit)) : doubled;
        }
        long[] newLeaves = capacity == leaves.length ? leaves : new long[capacity];
        long[] newCounts = capacity == leaves.length ? counts : new long[capacity * width];
        System.arraycopy(leaves, head, newLeaves, 0, size);
        System.arraycopy(counts, head * width, newCounts, 0, size * width);
        if (sums != null) {
            Exact[] newSums = capacity == leaves.length ? sums : new Exact[capacity * width];
            System.arraycopy(sums, head * width, newSums, 0, size * width);
            if (newSums == sums) {
                Arrays.fill(sums, size * width, (head + size) * width, null);
            }
            sums = newSums;
        }
        leaves = newLeaves;
        counts = newCounts;
        head = 0;
    }

    Buckets copy() {
        Buckets to = new Buckets();
        to.width = width;
        to.size = size;
        if (width < 0) {
            return to;
        }
        // The copy starts at the oldest bucket and keeps the room after the newest.
        to.leaves = Arrays.copyOfRange(leaves, head, leaves.length);
        to.counts = Arrays.copyOfRange(counts, head * width, leaves.length * width);
        if (sums != null) {
            to.sums = Arrays.copyOfRange(sums, head * width, leaves.length * width);
            for (int i = 0; i < size * width; i++) {
                if (to.sums[i] != null) {
                    to.sums[i] = to.sums[i].copy();
                }
            }
        }
        return to;
    }

    /** Appends a bucket read from a checkpoint, which holds {@code total} of them, oldest first. */
    void load(long leave, long[] cellCounts, Exact[] cellSums, int total) {
        if (width < 0) {
            width = cellCounts.length;
            leaves = new long[Math.max(4, total)];
            counts = new long[leaves.length * width];
        }
        int p = head + size;
        leaves[p] = leave;
        System.arraycopy(cellCounts, 0, counts, p * width, width);
        if (cellSums != null) {
            if (sums == null) {
                sums = new Exact[leaves.length * width];
            }
            System.arraycopy(cellSums, 0, sums, p * width, width);
        }
        size++;
    }
}
