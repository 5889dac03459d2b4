package io.meshcrypt.meshconfig.cli;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.io.PrintStream;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.ExitCode;
import picocli.CommandLine.ParameterException;

/**
 * The command line of a meshcrypt service that reads a config file (the filter-service, the xDS server): a failed
 * command is one line on stderr, never a stack trace. Exit codes: 0 done, 1 failed, 2 a usage error or an invalid
 * config file, whose {@code file:line:column: field: problem} the line carries.
 */
public final class ConfigCommandLine {

    private ConfigCommandLine() {
    }

    /**
     * @param command the picocli {@code @Command} object
     * @param name what starts every error line, e.g. {@code meshcrypt}
     * @param invalidConfig what an invalid config file is called on that line, e.g. {@code invalid configuration}
     */
    public static CommandLine of(Object command, String name, String invalidConfig, PrintStream out, PrintStream err) {
        return new CommandLine(command)
                .setOut(new PrintWriter(out, true))
                .setErr(new PrintWriter(err, true))
                // an invalid config file is the user's input like a wrong option: 2; anything else that failed: 1
                .setExitCodeExceptionMapper(e -> e instanceof ConfigException || e instanceof ParameterException
                        ? ExitCode.USAGE : ExitCode.SOFTWARE)
                .setExecutionExceptionHandler((e, cmd, parsed) -> {
                    cmd.getErr().println(name + ": " + (e instanceof ConfigException ? invalidConfig + ": " : "")
                            + e.getMessage());
                    return cmd.getExitCodeExceptionMapper().getExitCode(e);
                });
    }
}
