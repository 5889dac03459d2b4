package io.meshcrypt.meshconfig.yaml;

/** Invalid configuration; the message names the file, line and field. */
public class ConfigException extends Exception {
    public ConfigException(String message) {
        super(message);
    }

    public ConfigException(String message, Throwable cause) {
        super(message, cause);
    }
}
