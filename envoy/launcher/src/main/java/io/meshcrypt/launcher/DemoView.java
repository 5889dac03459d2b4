package io.meshcrypt.launcher;

import java.util.ArrayList;
import java.util.List;

/**
 * The demo's live view: three columns, what the apps sent (plaintext), what they received through their sidecars,
 * and what the broker holds or what came back to the HTTP client. Each app log line of interest becomes one cell,
 * wrapped over up to four rows.
 */
public final class DemoView {

    /** The app logs the view reads, in this order. */
    public static final List<String> SOURCES = List.of("go-producer", "node-producer", "spring-consumer", "broker-tap", "http-echo", "http-client");

    /** Which lines of which app's log the view shows, in which column, under which tag. */
    private record Cell(String source, String prefix, int column, String tag) {
    }

    private static final List<Cell> CELLS = List.of(
            new Cell("go-producer", "sent ", 0, "go"),
            new Cell("node-producer", "sent ", 0, "node"),
            new Cell("http-client", "sent ", 0, "http client"),
            new Cell("spring-consumer", "received ", 1, "spring"),
            new Cell("http-echo", "received ", 1, "http service"),
            new Cell("broker-tap", "held ", 2, "broker"),
            new Cell("http-client", "got ", 2, "back at http client"));

    private final int width;

    /** @param columns the terminal's width; each column gets a third of it, at least 30 */
    public DemoView(int columns) {
        this.width = Math.max(30, (columns - 6) / 3);
    }

    public int columnWidth() {
        return width;
    }

    /** The two header lines. */
    public List<String> header() {
        return List.of(
                pad("SENT by the apps (plaintext)") + " | " + pad("RECEIVED by the apps (via Envoy)") + " | "
                        + "AT REST in the broker / back at the HTTP client",
                "-".repeat(3 * width + 6));
    }

    /** The rows for one line of {@code source}'s log; none when the line is not one the view shows. */
    public List<String> rows(String source, String line) {
        Cell kind = CELLS.stream().filter(c -> c.source().equals(source) && line.startsWith(c.prefix())).findFirst().orElse(null);
        if (kind == null) {
            return List.of();
        }
        String cell = kind.tag() + ": " + line.substring(line.indexOf(' ') + 1);
        // wrap a long cell over up to 4 rows rather than cut what it shows (a card number, a rewrite)
        if (cell.length() > 4 * width) {
            cell = cell.substring(0, 4 * width - 2) + "..";
        }
        List<String> rows = new ArrayList<>();
        for (int start = 0; start < cell.length(); start += width) {
            String chunk = cell.substring(start, Math.min(cell.length(), start + width));
            StringBuilder row = new StringBuilder();
            for (int i = 0; i < 3; i++) {
                row.append(pad(i == kind.column() ? chunk : ""));
                if (i < 2) {
                    row.append(" | ");
                }
            }
            rows.add(row.toString().replaceFirst(" +$", ""));
        }
        return rows;
    }

    /** The mesh's summary line as a row across all three columns, cut to the view's width. */
    public String summary(String line) {
        int all = 3 * width + 6;
        String row = ">> " + line;
        return row.length() <= all ? row : row.substring(0, all - 2) + "..";
    }

    private String pad(String s) {
        return s.length() >= width ? s : s + " ".repeat(width - s.length());
    }
}
