package dev.tessera.stream;

import java.io.IOException;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.base.TypeSerializerSingleton;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputSerializer;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.types.StringValue;

/**
 * Keyed state on the wire (checkpoints, and the copy-on-write heap backend's copies): explicit and
 * compact instead of Kryo, and stable across versions of this jar: the format byte versions it (1:
 * the body; 2: its length, then the same body), and every format ever written still reads.
 * The dedup set is not written: it is rebuilt from the forget map, which holds every id once.
 */
public final class KeyAggregatorSerializer extends TypeSerializerSingleton<KeyAggregator> {
    private static final long serialVersionUID = 1L;
    public static final KeyAggregatorSerializer INSTANCE = new KeyAggregatorSerializer();
    private static final int FORMAT = 2;

    @Override
    public boolean isImmutableType() {
        return false;
    }

    @Override
    public KeyAggregator createInstance() {
        return new KeyAggregator(0);
    }

    @Override
    public KeyAggregator copy(KeyAggregator from) {
        KeyAggregator to = new KeyAggregator(from.buckets.length);
        for (int w = 0; w < from.buckets.length; w++) {
            to.buckets[w] = from.buckets[w].copy();
            to.totals[w] = from.totals[w] == null ? null : from.totals[w].copy();
        }
        to.seen.addAll(from.seen);
        for (Map.Entry<Long, List<String>> e : from.forget.entrySet()) {
            to.forget.put(e.getKey(), new ArrayList<>(e.getValue()));
        }
        to.lastAsOf = from.lastAsOf;
        to.maxEventTime = from.maxEventTime;
        return to;
    }

    @Override
    public KeyAggregator copy(KeyAggregator from, KeyAggregator reuse) {
        return copy(from);
    }

    @Override
    public int getLength() {
        return -1;
    }

    @Override
    public void serialize(KeyAggregator a, DataOutputView out) throws IOException {
        // Written to a byte array first, then in one call: a checkpoint stream takes each primitive
        // write through several layers of streams, which made checkpoints a sixth of the job's CPU.
        DataOutputSerializer body = BUFFER.get();
        body.clear();
        writeBody(a, body);
        out.writeByte(FORMAT);
        out.writeInt(body.length());
        out.write(body.getSharedBuffer(), 0, body.length());
    }

    private static final ThreadLocal<DataOutputSerializer> BUFFER =
            ThreadLocal.withInitial(() -> new DataOutputSerializer(4096));

    private static void writeBody(KeyAggregator a, DataOutputView out) throws IOException {
        out.writeLong(a.lastAsOf);
        out.writeLong(a.maxEventTime);
        out.writeInt(a.buckets.length);
        for (int w = 0; w < a.buckets.length; w++) {
            writeCells(a.totals[w], out);
            Buckets b = a.buckets[w];
            out.writeInt(b.size());
            for (int p = b.oldest(); p < b.oldest() + b.size(); p++) {
                out.writeLong(b.leave(p));
                writeBucket(b, p, out);
            }
        }
        out.writeInt(a.forget.size());
        for (Map.Entry<Long, List<String>> e : a.forget.entrySet()) {
            out.writeLong(e.getKey());
            out.writeInt(e.getValue().size());
            for (String id : e.getValue()) {
                StringValue.writeString(id, out);
            }
        }
    }

    @Override
    public KeyAggregator deserialize(DataInputView in) throws IOException {
        int format = in.readByte();
        if (format == FORMAT) {
            in.readInt();  // the body's length (it lets copy() move a value without parsing it)
        } else if (format != 1) {  // format 1: the same body without its length
            throw new IOException("unknown KeyAggregator state format " + format);
        }
        long lastAsOf = in.readLong();
        long maxEventTime = in.readLong();
        KeyAggregator a = new KeyAggregator(in.readInt());
        a.lastAsOf = lastAsOf;
        a.maxEventTime = maxEventTime;
        for (int w = 0; w < a.buckets.length; w++) {
            a.totals[w] = readCells(in);
            Buckets b = a.buckets[w];
            int total = in.readInt();
            for (int n = 0; n < total; n++) {
                long leave = in.readLong();
                KeyAggregator.Cells cells = readCells(in);
                b.load(leave, cells.counts, cells.sums, total);
            }
        }
        for (int n = in.readInt(); n > 0; n--) {
            long when = in.readLong();
            int count = in.readInt();
            List<String> ids = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                String id = StringValue.readString(in);
                ids.add(id);
                a.seen.add(id);
            }
            a.forget.put(when, ids);
        }
        return a;
    }

    @Override
    public KeyAggregator deserialize(KeyAggregator reuse, DataInputView in) throws IOException {
        return deserialize(in);
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
        serialize(deserialize(in), out);
    }

    @Override
    public TypeSerializerSnapshot<KeyAggregator> snapshotConfiguration() {
        return new Snapshot();
    }

    private static void writeCells(KeyAggregator.Cells c, DataOutputView out) throws IOException {
        if (c == null) {
            out.writeInt(-1);
            return;
        }
        out.writeInt(c.counts.length);
        for (int i = 0; i < c.counts.length; i++) {
            out.writeLong(c.counts[i]);
            writeSum(c.sum(i), out);
        }
    }

    private static void writeSum(Exact sum, DataOutputView out) throws IOException {
        if (sum == null) {  // a count slot, or a sum slot nothing added to (an older state wrote a zero here)
            out.writeInt(0);
            out.writeInt(-1);
            return;
        }
        out.writeInt(sum.exp);
        if (sum.big != null) {
            byte[] n = sum.big.toByteArray();
            out.writeInt(n.length);
            out.write(n);
            return;
        }
        // The bytes of BigInteger.valueOf(small).toByteArray() (big-endian two's complement, shortest
        // with a sign bit), without making the two objects per sum: they were a sixth of a checkpoint.
        long v = sum.small;
        int length = (64 - Long.numberOfLeadingZeros(v < 0 ? ~v : v)) / 8 + 1;
        out.writeInt(length);
        for (int i = length - 1; i >= 0; i--) {
            out.writeByte((int) (v >>> (8 * i)));
        }
    }

    /** A bucket as writeCells writes a Cells: the same bytes, so either reads back as the other. */
    private static void writeBucket(Buckets b, int p, DataOutputView out) throws IOException {
        out.writeInt(b.width);
        for (int i = 0; i < b.width; i++) {
            out.writeLong(b.count(p, i));
            writeSum(b.sum(p, i), out);
        }
    }

    private static KeyAggregator.Cells readCells(DataInputView in) throws IOException {
        int n = in.readInt();
        if (n < 0) {
            return null;
        }
        long[] counts = new long[n];
        Exact[] sums = new Exact[n];
        boolean anySum = false;
        for (int i = 0; i < n; i++) {
            counts[i] = in.readLong();
            int exp = in.readInt();
            int length = in.readInt();
            if (length < 0) {
                continue;
            }
            byte[] mantissa = new byte[length];
            in.readFully(mantissa);
            sums[i] = new Exact(new BigInteger(mantissa), exp);
            anySum = true;
        }
        return new KeyAggregator.Cells(counts, anySum ? sums : null);
    }

    /** Restores the serializer from a checkpoint; the format byte in each value carries versioning. */
    public static final class Snapshot extends SimpleTypeSerializerSnapshot<KeyAggregator> {
        public Snapshot() {
            super(() -> INSTANCE);
        }
    }
}
