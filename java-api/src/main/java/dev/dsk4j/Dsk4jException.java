package dev.dsk4j;

/**
 * A native call failed: the status and the library's own message (which names the function
 * and the argument). Invalid arguments caught on the Java side are
 * {@link IllegalArgumentException}s instead, also naming the argument.
 */
public class Dsk4jException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final Status status;

    public Dsk4jException(Status status, String message) {
        super(message);
        this.status = status;
    }

    /** The native status. */
    public Status status() { return status; }
}
