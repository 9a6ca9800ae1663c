package dev.dsk4j.model;

import java.io.Console;
import java.io.PrintStream;
import java.util.Locale;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;

/**
 * A one-line text progress report on standard error, e.g. while weights are copied to a device.
 * When standard error is a terminal the line is redrawn in place ({@code '\r'}) at most about ten
 * times per second ({@code "loading  42% 0.5 GB / 1.2 GB"}); otherwise nothing is printed until
 * {@link #close()}, which prints one final line ({@code "loading 100% 1.2 GB in 3.4 s"}). The unit
 * {@code "B"} is printed as kB/MB/GB (powers of 1000); any other unit as a plain count
 * ({@code "61 layers"}). {@link #quiet()} prints nothing. Safe to {@link #advance} from several
 * threads.
 */
public final class Progress implements AutoCloseable {
    private static final long REDRAW_NANOS = 100_000_000L;

    private final String label;
    private final long total;
    private final String unit;
    private final PrintStream out; // null: quiet
    private final boolean interactive;
    private final LongSupplier clock;
    private final long startNanos;
    private final AtomicLong done = new AtomicLong();
    private long lastDrawNanos;
    private int lastWidth;
    private boolean closed;

    private Progress(String label, long total, String unit, PrintStream out, boolean interactive, LongSupplier clock) {
        this.label = Objects.requireNonNull(label, "argument 'label' is null");
        this.unit = Objects.requireNonNull(unit, "argument 'unit' is null");
        this.total = total;
        this.out = out;
        this.interactive = interactive;
        this.clock = clock;
        this.startNanos = clock.getAsLong();
        this.lastDrawNanos = startNanos - REDRAW_NANOS;
    }

    /**
     * Starts a report of {@code total} units ({@code total <= 0}: unknown, no percentage) on
     * {@link System#err}, redrawn in place when it is a terminal.
     */
    public static Progress start(String label, long total, String unit) {
        Console c = System.console();
        return new Progress(label, total, unit, System.err, c != null && c.isTerminal(), System::nanoTime);
    }

    /** A report that prints nothing. */
    public static Progress quiet() {
        return new Progress("", 0, "", null, false, System::nanoTime);
    }

    /** A report on {@code out} (tests): {@code interactive} as if it were a terminal, time from {@code clock} (ns). */
    static Progress to(PrintStream out, boolean interactive, LongSupplier clock, String label, long total, String unit) {
        return new Progress(label, total, unit, Objects.requireNonNull(out), interactive, clock);
    }

    /** Records {@code n} more units done (n >= 0); redraws when interactive and 100 ms have passed. */
    public void advance(long n) {
        if (n < 0) throw new IllegalArgumentException("argument 'n' must not be negative, got " + n);
        done.addAndGet(n);
        if (out != null && interactive) redraw();
    }

    /** Units done so far. */
    public long done() { return done.get(); }

    private synchronized void redraw() {
        if (closed) return;
        long now = clock.getAsLong();
        if (now - lastDrawNanos < REDRAW_NANOS) return;
        lastDrawNanos = now;
        long d = done.get();
        String line = label + " " + percent(d) + amount(d) + (total > 0 ? " / " + amount(total) : "");
        print(line, false);
    }

    private void print(String line, boolean last) {
        StringBuilder sb = new StringBuilder();
        if (interactive) sb.append('\r');
        sb.append(line);
        if (interactive) sb.append(" ".repeat(Math.max(0, lastWidth - line.length())));
        lastWidth = line.length();
        if (last) sb.append('\n');
        out.print(sb);
        out.flush();
    }

    /** Prints the final line (once; nothing when quiet). */
    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        if (out == null) return;
        long d = done.get();
        double seconds = (clock.getAsLong() - startNanos) / 1e9;
        print(label + " " + percent(d) + amount(d) + String.format(Locale.ROOT, " in %.1f s", seconds), true);
    }

    private String percent(long d) {
        if (total <= 0) return "";
        return String.format(Locale.ROOT, "%3d%% ", Math.round(100.0 * d / total));
    }

    private String amount(long n) {
        if (!unit.equals("B")) return n + (unit.isEmpty() ? "" : " " + unit);
        if (n < 1000) return n + " B";
        String[] units = {"kB", "MB", "GB", "TB", "PB"};
        double v = n;
        int u = -1;
        while (v >= 1000 && u < units.length - 1) {
            v /= 1000;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
